"""onnxruntime inference for contract models; never imports TensorFlow.

Providers are chosen by :mod:`model.providers`; ``Detector.providers`` is what the session
really uses.

What a run copies to the host is what the caller asks for. A contract-v2 model selects its
candidates inside the graph: the hot paths (detect, sliders, evaluate) fetch only those
(~220 KB per image at 640 px), and the dense ``boxes`` / ``scores`` and the pyramid only
when a view needs them (``features=True``, the app's layer viewer). A v1 model still
loads; its candidates are found on the host from the dense outputs, as before.

Shapes: on CUDA / TensorRT every image goes onto one square canvas per inference size
(cuDNN tunes per input shape; a warm-up run at load does that tuning off the user's first
image); on the CPU the canvas is the letterboxed image padded to a multiple of 128, which
costs less compute than a square canvas for non-square images. With a fixed canvas the
network runs in sessions whose input shape is fixed too (:mod:`model.fixed_shapes`): the
graph's shape arithmetic is folded at load instead of running on the host inside each run.

IOBinding is off by default, on every provider: measured on an H200 (issue 14), binding
host memory made a run slower (640 px: 40.2 ms against 36.6 ms plain, network 17.2 vs
11.5 ms), and what it could save — copying the dense outputs — is gone once only the
candidates are fetched (``session.run`` copies only the outputs it is asked for).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from model import contract as C
from model.anchors import anchor_location, anchor_offsets, level_shapes
from model.errors import ModelContractError, StudioError
from model.fixed_shapes import MAX_SESSIONS, BoundRun, FixedShapeSessions, free_dimensions
from model.letterbox import PAD_MULTIPLE, InputBuffers, boxes_to_original, fill_canvases, letterbox_size, resize_for_size, square_canvas
from model.postprocess import CANDIDATE_FLOOR, Candidates, candidates_from_selection, extract_candidates
from model.providers import CPU, CUDA, TENSORRT, choose_providers, first_line, precision_note, provider_args

log = logging.getLogger(__name__)

# Inference sizes (longest side, pixels) outside these bounds are refused before any
# allocation: at 100,000 px the resized image alone would need ~30 GB, and a ResNet50
# pyramid at 4096 px already needs several GB.
MIN_INFERENCE_SIZE, MAX_INFERENCE_SIZE = 32, 4096


class InferenceSizeError(StudioError, ValueError):
    """The requested inference size is outside MIN_INFERENCE_SIZE..MAX_INFERENCE_SIZE."""


class InferenceError(StudioError):
    """onnxruntime failed while running the network (out of memory, a provider fault...)."""


@dataclass
class NetworkOutput:
    """One image's network outputs, mapped to original-image pixels, plus its candidates.

    boxes (A, 4) float32 xyxy original pixels and scores (A, C): the dense outputs, None
    unless the run fetched them (``dense``); pyramid: level name -> (h, w, F), empty unless
    the run fetched it (``features``); level_shapes (h, w) per level (always set);
    anchor_offsets (L + 1,); candidates: always set.
    """

    boxes: np.ndarray | None
    scores: np.ndarray | None
    pyramid: dict[str, np.ndarray]
    level_shapes: list[tuple[int, int]]
    anchor_offsets: np.ndarray
    anchors_per_cell: int
    scale: float
    image_hw: tuple[int, int]
    input_hw: tuple[int, int]
    timings_ms: dict[str, float]
    candidates: Candidates = field(repr=False)
    fetched_bytes: int = 0  # what this image's outputs copied from the session to the host

    def anchor_location(self, anchor_id: int) -> tuple[int, int, int, int]:
        """(level index, row, col, anchor within the cell) of ``anchor_id``."""
        return anchor_location(int(anchor_id), self.level_shapes, self.anchors_per_cell)

    def level_score_map(self, level_idx: int, class_id: int | None = None) -> np.ndarray:
        """(h, w) highest class score of each cell of a level (of one class if given).
        Needs the dense scores: run with ``dense=True`` (``features=True`` implies it)."""
        if self.scores is None:
            raise ValueError("the dense scores were not fetched: run the detector with dense=True")
        h, w = self.level_shapes[level_idx]
        start, stop = self.anchor_offsets[level_idx], self.anchor_offsets[level_idx + 1]
        block = self.scores[start:stop].reshape(h, w, self.anchors_per_cell, -1)
        if class_id is not None:
            block = block[..., class_id]
        return block.reshape(h, w, -1).max(axis=-1)


@dataclass(frozen=True)
class PreparedImage:
    """An image letterboxed for the network (:meth:`Detector.prepare`, thread-safe).

    resized (h, w, 3) uint8: the image at the inference size, which goes at the top left of
    a ``canvas_hw`` canvas of zeros. The zeros are written straight into the network's input
    batch: a padded copy per image cost more than the resize (a fresh 1.2 MB canvas, 640 px:
    1.0 ms of the 1.3 ms letterbox on a 2-core EPYC)."""

    resized: np.ndarray
    canvas_hw: tuple[int, int]
    scale: float
    size: int
    image_hw: tuple[int, int]
    preprocess_ms: float

    @property
    def canvas(self) -> np.ndarray:
        """The padded (H, W, 3) uint8 canvas the network sees (a new array)."""
        canvas = np.empty((1, *self.canvas_hw, 3), np.uint8)
        fill_canvases(canvas, [self.resized])  # as the network's input batch is filled
        return canvas[0]


@dataclass(eq=False)
class NetworkBatch:
    """Prepared images on their way through one network call per canvas shape, in three
    steps: :meth:`Detector.fill` writes them into the network's input arrays (host work),
    :meth:`Detector.run_network` runs the session on them (the step ``detect`` / ``evaluate``
    run on their network thread, while the caller fills the next batch and makes the outputs
    of the last), :meth:`Detector.outputs` maps what came back to each image (host work).

    calls: per canvas shape, the positions of its images in ``prepared`` and their (N, H, W,
    3) input array, lent by the Detector until the run; after the run, ``ran``: per call,
    those positions, the fetched outputs by name, the input's (N, H, W) and network ms per image."""

    prepared: tuple[PreparedImage, ...]
    calls: list[tuple[list[int], np.ndarray]]
    fill_ms: float  # per image
    ran: list[tuple[list[int], dict[str, np.ndarray], tuple[int, int, int], float]] | None = None
    dense: bool = False
    features: bool = False


def _check_size(size: int) -> int:
    if not MIN_INFERENCE_SIZE <= size <= MAX_INFERENCE_SIZE:
        raise InferenceSizeError(
            None, f"inference size {size} px is outside {MIN_INFERENCE_SIZE}..{MAX_INFERENCE_SIZE} px (longest side)"
        )
    return size


class Detector:
    """An onnxruntime session on a contract model.

    ``fixed_canvas``: letterbox every image onto one square canvas per inference size
    (:func:`square_canvas`); None (default) turns it on for CUDA and TensorRT, where cuDNN
    and TensorRT tune per input shape, and leaves the CPU on the smaller pad-to-128 canvas.
    ``io_binding``: run through onnxruntime's IOBinding (host buffers) instead of
    ``session.run``; off by default everywhere (see the module docstring for why).
    ``make_session(overrides, cuda_graph=False)``: builds another session on the same file
    with the input dimensions ``overrides`` fixed (what :meth:`load` passes). With it,
    ``fixed_shapes`` runs every canvas shape in its own fixed-shape session
    (:class:`~model.fixed_shapes.FixedShapeSessions`; None: with a fixed canvas), and
    ``cuda_graph`` runs the hot path (candidates only) through buffers that stay put
    (:class:`~model.fixed_shapes.BoundRun`), captured as a CUDA graph on CUDA / TensorRT;
    off by default. One Detector may be called from several threads; IOBinding runs are
    serialised.
    """

    def __init__(
        self,
        session,
        contract: C.ModelContract,
        notes: list[str],
        *,
        io_binding: bool | None = None,
        fixed_canvas: bool | None = None,
        make_session: Callable[..., Any] | None = None,
        fixed_shapes: bool | None = None,
        cuda_graph: bool = False,
    ) -> None:
        self.session = session
        self.contract = contract
        self.providers: list[str] = list(session.get_providers())
        self.provider_notes = notes
        self._level_names = [lv.name for lv in contract.levels]
        self._strides = tuple(lv.stride for lv in contract.levels)
        on_gpu = bool(self.providers) and self.providers[0] in (CUDA, TENSORRT)
        self.on_gpu: bool = on_gpu
        self.uses_io_binding: bool = bool(io_binding)
        self.fixed_canvas: bool = on_gpu if fixed_canvas is None else bool(fixed_canvas)
        self._make_session = make_session
        fixed = make_session is not None and (self.fixed_canvas if fixed_shapes is None else bool(fixed_shapes))
        dims = free_dimensions(session) if fixed else []
        fixed = fixed and any(dims)  # nothing to fix in a model exported at one input shape
        self._fixed = FixedShapeSessions(make_session, dims) if fixed else None
        self.uses_cuda_graph: bool = fixed and bool(cuda_graph)
        self._bound: dict[tuple[int, ...], BoundRun] = {}  # cuda_graph: one per input shape
        self._bindings: dict[int, Any] = {}  # io_binding: one per session, created on first use
        self._buffers = InputBuffers()  # input arrays, lent out by fill, back after run_network
        self._binding_lock = threading.Lock()

    @property
    def fixed_shapes(self) -> bool:
        """Whether canvases run in fixed-shape sessions (see :class:`Detector`)."""
        return self._fixed is not None

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        spin: bool = True,
        io_binding: bool | None = None,
        fixed_canvas: bool | None = None,
        fixed_shapes: bool | None = None,
        cuda_graph: bool = False,
        warm_up: bool | None = None,
        cuda_options: dict[str, object] | None = None,
    ) -> Detector:
        """Open and validate ``path``; raise ModelContractError naming the file and problem.

        ``threads``: onnxruntime intra-op threads (0: one per core). ``spin=False`` stops
        idle worker threads from busy-waiting after each run: slightly slower back-to-back
        runs, but the cores go back to the GUI thread at once (the app's choice).
        ``io_binding``, ``fixed_canvas``, ``fixed_shapes``, ``cuda_graph``: see
        :class:`Detector`. ``warm_up``: one run on a blank canvas at the default size
        before returning, so that cuDNN / TensorRT tune now (the caller's thread: the app
        loads models on a worker) rather than on the first image; None: on GPU providers
        only. ``cuda_options``: added to / overriding
        :data:`model.providers.CUDA_OPTIONS` (``{"use_tf32": 0}`` for exact fp32).
        """
        import onnxruntime as ort

        contract = C.read_contract(path)
        chosen, notes = choose_providers(providers)
        # onnxruntime's default logger prints graph-level warnings (deprecated Resize
        # attributes from tf2onnx...) in colour at session creation; errors still show.
        ort.set_default_logger_severity(3)

        def make_session(overrides: dict[str, int], *, cuda_graph: bool = False):  # noqa: ANN202 - an InferenceSession
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = threads
            if not spin:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3  # our own notes say what matters; no red walls
            for name, value in overrides.items():
                options.add_free_dimension_override_by_name(name, value)
            return ort.InferenceSession(str(path), sess_options=options, providers=provider_args(chosen, path, cuda_options, cuda_graph=cuda_graph))

        try:
            session = make_session({})
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own assorted types
            if chosen == [CPU]:
                raise ModelContractError(path, f"onnxruntime cannot load it: {first_line(exc)}") from None
            # A GPU provider whose libraries load but which cannot start (no device, driver
            # too old) raises here instead of falling back: run on the CPU and say so.
            gpu = ", ".join(name for name in chosen if name != CPU)
            chosen = [CPU]
            try:
                session = make_session({})
            except Exception as cpu_exc:  # noqa: BLE001 - then the model itself is the problem
                raise ModelContractError(path, f"onnxruntime cannot load it: {first_line(cpu_exc)}") from None
            notes.append(f"{gpu} failed to start ({first_line(exc)}); running on CPU")
        used = session.get_providers()
        for name in chosen:
            if name not in used:
                notes.append(f"{name} was requested but failed to initialise; running without it")
        note = precision_note(contract, used)
        if note:
            notes.append(note)
        out_names = {o.name for o in session.get_outputs()}
        wanted = [C.BOXES, C.SCORES, *(lv.name for lv in contract.levels), *(C.CANDIDATE_OUTPUTS if contract.has_candidates else ())]
        missing = [n for n in wanted if n not in out_names]
        if missing:
            raise ModelContractError(path, f"missing outputs {missing}")
        detector = cls(
            session,
            contract,
            notes,
            io_binding=io_binding,
            fixed_canvas=fixed_canvas,
            make_session=make_session,
            fixed_shapes=fixed_shapes,
            cuda_graph=cuda_graph,
        )
        if warm_up if warm_up is not None else detector.on_gpu:
            detector.warm_up()
        return detector

    @property
    def name(self) -> str:
        return Path(self.contract.path).name

    def canvas_shape(self, image_hw: tuple[int, int], *, size: int) -> tuple[int, int]:
        """(height, width) of the network input for an ``image_hw`` image at ``size``."""
        if self.fixed_canvas:
            return square_canvas(size)
        new_h, new_w = letterbox_size(image_hw, size=size)
        return math.ceil(new_h / PAD_MULTIPLE) * PAD_MULTIPLE, math.ceil(new_w / PAD_MULTIPLE) * PAD_MULTIPLE

    def warm_up(self, *, size: int | None = None, batch: int = 1) -> float:
        """One run of ``batch`` blank canvases at ``size`` (default: the model's), fetching
        what the hot path fetches; returns its milliseconds. On a GPU this is where cuDNN
        (or TensorRT) tunes for the shape."""
        size = _check_size(int(size or self.contract.default_size))
        height, width = self.canvas_shape((size, size), size=size)
        started = time.perf_counter()
        self._run_session(self._names(dense=False, features=False), np.zeros((batch, height, width, 3), np.float32))
        return (time.perf_counter() - started) * 1e3

    def _names(self, *, dense: bool, features: bool) -> list[str]:
        if self.contract.has_candidates:
            names = list(C.CANDIDATE_OUTPUTS)
            if dense:
                names += [C.BOXES, C.SCORES]
        else:
            names = [C.BOXES, C.SCORES]  # the host extracts the candidates from these
        return names + (self._level_names if features else [])

    def _run_session(self, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        """The network's outputs ``names`` for the (N, H, W, 3) float32 ``batch``, as numpy."""
        session = self.session_for(batch.shape)
        if self.uses_cuda_graph and names == self._names(dense=False, features=False):
            runner = self._bound_run(batch.shape, names)
            if runner is not None:
                return runner(batch)
        if not self.uses_io_binding:
            return session.run(names, {C.INPUT_NAME: batch})
        return self._run_bound(session, names, batch)

    def session_for(self, shape: tuple[int, ...]) -> Any:
        """The session to run an input of ``shape`` in: its fixed-shape session when this
        Detector has them, else the free-shape one. A fixed-shape session that cannot be
        made turns them off for good, with a note."""
        fixed = self._fixed
        if fixed is None:
            return self.session
        try:
            return fixed.session_for(shape)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own assorted types
            note = f"fixed-shape session for {tuple(shape)} failed ({first_line(exc)}); running with free shapes"
            log.warning("%s: %s", self.name, note)
            self.provider_notes.append(note)
            self._fixed, self.uses_cuda_graph = None, False
            return self.session

    def _bound_run(self, shape: tuple[int, ...], names: list[str]) -> BoundRun | None:
        """The :class:`BoundRun` for ``shape``, made on first use (one run of the fixed-shape
        session gives the outputs' shapes, then a second session is made for the capture);
        None, with a note and ``cuda_graph`` off for good, when it cannot be made."""
        key = tuple(int(v) for v in shape)
        with self._binding_lock:
            runner = self._bound.get(key)
            if runner is None:
                fixed, make = self._fixed, self._make_session
                if fixed is None or make is None:
                    return None
                try:
                    probe = fixed.session_for(key).run(names, {C.INPUT_NAME: np.zeros(key, np.float32)})
                    session = make(fixed.overrides(key), cuda_graph=True)
                    device = "cuda" if self.on_gpu else "cpu"
                    runner = BoundRun(session, C.INPUT_NAME, key, names, [p.shape for p in probe], [p.dtype for p in probe], device=device)
                except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own assorted types
                    note = f"CUDA graph for {key} failed ({first_line(exc)}); running without it"
                    log.warning("%s: %s", self.name, note)
                    self.provider_notes.append(note)
                    self.uses_cuda_graph = False
                    return None
                self._bound[key] = runner
                while len(self._bound) > MAX_SESSIONS:
                    self._bound.pop(next(iter(self._bound)))
            return runner

    def _run_bound(self, session: Any, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        """:meth:`_run_session` through IOBinding: the host input is bound (onnxruntime copies
        it to the device), and only ``names`` are bound back, to host memory."""
        with self._binding_lock:
            binding = self._bindings.get(id(session))
            if binding is None:
                binding = self._bindings[id(session)] = session.io_binding()
            try:
                binding.bind_cpu_input(C.INPUT_NAME, batch)
                for name in names:
                    binding.bind_output(name, "cpu")
                session.run_with_iobinding(binding)
                return binding.copy_outputs_to_cpu()
            finally:
                # drop the references to this run's tensors (the pyramid can be large)
                binding.clear_binding_inputs()
                binding.clear_binding_outputs()

    def prepare(self, image: np.ndarray, *, size: int | None = None) -> PreparedImage:
        """Letterbox an (H, W, 3) uint8 RGB image for this detector at ``size`` (default: the
        model's); pure CPU work, safe to run on worker threads while the network runs."""
        if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        size = _check_size(int(size or self.contract.default_size))
        started = time.perf_counter()
        height, width = image.shape[:2]
        resized, scale = resize_for_size(image, size=size)
        canvas_hw = self.canvas_shape((height, width), size=size)
        return PreparedImage(resized, canvas_hw, scale, size, (height, width), (time.perf_counter() - started) * 1e3)

    def run(
        self,
        image: np.ndarray,
        *,
        size: int | None = None,
        floor: float | None = None,
        features: bool = True,
        dense: bool | None = None,
    ) -> NetworkOutput:
        """Run the network on an (H, W, 3) uint8 RGB image, longest side resized to ``size``
        (default: the model's). Boxes come back xyxy in the image's own pixels, clipped to it;
        candidates are kept above ``floor`` (default CANDIDATE_FLOOR).

        ``features``: fetch the pyramid (P3..P7) too, for the layer viewer; False leaves it
        on the device, ``pyramid`` is empty and ``level_shapes`` come from the canvas size
        and the contract's strides. ``dense``: fetch the dense ``boxes`` / ``scores`` (for
        per-level score maps); None: as ``features``. Without either, a v2 model copies only
        its candidates to the host.

        Raises ModelContractError when the outputs do not have the contract's shapes."""
        return self.run_prepared([self.prepare(image, size=size)], floor=floor, features=features, dense=dense)[0]

    def run_prepared(
        self,
        prepared: Sequence[PreparedImage],
        *,
        floor: float | None = None,
        features: bool = False,
        dense: bool | None = None,
        pad_batch_to: int | None = None,
    ) -> list[NetworkOutput]:
        """One network call per canvas shape on several :meth:`prepare`-d images of one
        inference size (a fixed canvas gives one shape, hence one call); one NetworkOutput
        each, in order, each what :meth:`run` gives for that image. ``pad_batch_to``: fill a
        call up with blank canvases to this many (a GPU then sees one batch shape, the last
        batch of a folder included). ``floor``, ``features``, ``dense``: see :meth:`run`
        (here ``features`` defaults to False: batches are for the hot paths).
        :meth:`fill`, :meth:`run_network`, :meth:`outputs`, on this thread."""
        batch = self.fill(prepared, pad_batch_to=pad_batch_to)
        return self.outputs(self.run_network(batch, features=features, dense=dense), floor=floor)

    def fill(self, prepared: Sequence[PreparedImage], *, pad_batch_to: int | None = None) -> NetworkBatch:
        """Step 1 of :meth:`run_prepared`: the images written into input arrays, one per
        canvas shape (of ``pad_batch_to`` images at least). Host work, safe on any thread."""
        sizes = {p.size for p in prepared}
        if len(sizes) > 1:
            raise ValueError(f"one inference size per batch, got {sorted(sizes)}")
        started = time.perf_counter()
        by_shape: dict[tuple[int, int], list[int]] = {}
        for index, item in enumerate(prepared):
            by_shape.setdefault(item.canvas_hw, []).append(index)
        calls = []
        for (height, width), indices in by_shape.items():
            array = self._buffers.take((max(len(indices), pad_batch_to or 0), height, width, 3), np.float32)
            fill_canvases(array, [prepared[i].resized for i in indices])
            calls.append((indices, array))
        fill_ms = (time.perf_counter() - started) * 1e3 / max(1, len(prepared))
        return NetworkBatch(tuple(prepared), calls, fill_ms)

    def run_network(self, batch: NetworkBatch, *, features: bool = False, dense: bool | None = None) -> NetworkBatch:
        """Step 2 of :meth:`run_prepared`: the session on a :meth:`fill`-ed batch, once;
        fetches the candidates, plus the dense outputs (``dense``) and the pyramid
        (``features``), see :meth:`run`. The input arrays go back to the Detector."""
        if batch.ran is not None:
            raise ValueError("this batch has already run")
        batch.dense = features if dense is None else dense
        batch.features = features
        names = self._names(dense=batch.dense, features=features)
        calls, batch.calls, batch.ran = batch.calls, [], []
        try:
            for indices, array in calls:
                started = time.perf_counter()
                try:
                    fetched = dict(zip(names, self._run_session(names, array)))
                except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types (out of memory...)
                    size = batch.prepared[indices[0]].size
                    raise InferenceError(self.contract.path, f"inference at size {size} failed: {first_line(exc)}") from exc
                network_ms = (time.perf_counter() - started) * 1e3 / len(indices)
                batch.ran.append((indices, fetched, array.shape[:3], network_ms))
        finally:
            for _, array in calls:
                self._buffers.give_back(array)
        return batch

    def outputs(self, batch: NetworkBatch, *, floor: float | None = None) -> list[NetworkOutput]:
        """Step 3 of :meth:`run_prepared`: one NetworkOutput per image of a batch that ran, in
        order; candidates above ``floor`` (default CANDIDATE_FLOOR). Host work."""
        if batch.ran is None:
            raise ValueError("this batch has not run yet (Detector.run_network)")
        floor = CANDIDATE_FLOOR if floor is None else float(floor)
        results: list[NetworkOutput | None] = [None] * len(batch.prepared)
        for indices, fetched, (count, height, width), network_ms in batch.ran:
            fetched_bytes = sum(int(a.nbytes) for a in fetched.values()) // count
            if batch.features:
                shapes = [tuple(int(d) for d in fetched[name].shape[1:3]) for name in self._level_names]
            else:  # what the network's 'same'-padded stride-2 steps give: ceil(side / stride)
                shapes = level_shapes((height, width), self._strides)
            offsets = anchor_offsets(shapes, self.contract.anchors_per_cell)
            for i, index in enumerate(indices):
                item = batch.prepared[index]
                started = time.perf_counter()
                output = self._output(item, i, fetched, shapes, offsets, floor=floor, dense=batch.dense, features=batch.features, batch_hw=(height, width))
                candidates_ms = (time.perf_counter() - started) * 1e3
                output.timings_ms.update(preprocess=item.preprocess_ms + batch.fill_ms, network=network_ms, candidates=candidates_ms)
                output.fetched_bytes = fetched_bytes
                results[index] = output
        return results  # type: ignore[return-value] - every index was filled

    def _output(
        self,
        item: PreparedImage,
        i: int,
        outputs: dict[str, np.ndarray],
        shapes: list[tuple[int, int]],
        offsets: np.ndarray,
        *,
        floor: float,
        dense: bool,
        features: bool,
        batch_hw: tuple[int, int],
    ) -> NetworkOutput:
        """Image ``i`` of a batch's ``outputs`` -> its NetworkOutput (original pixels)."""
        num_anchors, num_classes = int(offsets[-1]), self.contract.num_classes
        boxes = scores = None
        if C.BOXES in outputs:
            boxes, scores = outputs[C.BOXES][i], outputs[C.SCORES][i]
            if scores.shape != (num_anchors, num_classes) or boxes.shape != (num_anchors, 4):
                raise ModelContractError(
                    self.contract.path,
                    f"outputs disagree with the contract: boxes {list(boxes.shape)} and scores {list(scores.shape)} for"
                    f" {num_anchors} anchors (pyramid {shapes}) and {num_classes} classes",
                )
            boxes = boxes_to_original(boxes, image_hw=item.image_hw, size=item.size)
        if self.contract.has_candidates:
            cand_boxes, cand_scores, class_ids, anchor_ids, level_ids = (outputs[n][i] for n in C.CANDIDATE_OUTPUTS)
            if cand_boxes.ndim != 2 or cand_boxes.shape[1:] != (4,) or cand_scores.shape != cand_boxes.shape[:1]:
                raise ModelContractError(
                    self.contract.path,
                    f"candidate outputs disagree with the contract: boxes {list(cand_boxes.shape)}, scores {list(cand_scores.shape)}",
                )
            candidates = candidates_from_selection(cand_boxes, cand_scores, class_ids, anchor_ids, level_ids, floor=floor)
            if anchor_ids.size and int(anchor_ids.max()) >= num_anchors:
                raise ModelContractError(self.contract.path, f"candidate anchor id {int(anchor_ids.max())} beyond the {num_anchors} anchors")
            candidates = replace(candidates, boxes=boxes_to_original(candidates.boxes, image_hw=item.image_hw, size=item.size))
        else:
            candidates = extract_candidates(boxes, scores, anchor_offsets=offsets, floor=floor)
        return NetworkOutput(
            boxes=boxes if dense else None,
            scores=scores if dense else None,
            pyramid={name: outputs[name][i] for name in self._level_names} if features else {},
            level_shapes=shapes,
            anchor_offsets=offsets,
            anchors_per_cell=self.contract.anchors_per_cell,
            scale=item.scale,
            image_hw=item.image_hw,
            input_hw=batch_hw,
            timings_ms={},
            candidates=candidates,
        )
