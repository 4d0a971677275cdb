"""Training end to end on a tiny synthetic dataset (tiny compact model, 128 px): the loss
goes down, the run folder holds what it promises, the exported model runs in onnxruntime;
cancel + resume, fine-tuning with an extra class, weight transfer, tf.distribute strategy
choice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tf_helpers import TINY_CLASSES, write_tiny_dataset

from model.tf.train import (
    HISTORY_FILE,
    MODEL_CONFIG_FILE,
    ONNX_FILE,
    TRAIN_CONFIG_FILE,
    WEIGHTS_FILE,
    TrainConfig,
    choose_strategy,
    is_chief,
    read_history,
    train,
    transfer_weights,
)

SIZE = 128


def tiny_train_config(data: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(
        data=str(data), out=str(out), backbone="tiny", compact=True, backbone_weights=None, size=SIZE, batch=4,
        epochs=2, steps_per_epoch=12, val_fraction=0.0, seed=0,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


class StepLosses:
    """A progress callback that recovers every step's loss from the running epoch means."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.steps: list[int] = []
        self._epoch, self._count, self._sum = None, 0, 0.0

    def __call__(self, done: int, total: int, info: dict) -> None:
        if info["epoch"] != self._epoch:
            self._epoch, self._count, self._sum = info["epoch"], 0, 0.0
        self._count += 1
        running_sum = (info["cls_loss"] + info["box_loss"]) * self._count
        self.losses.append(running_sum - self._sum)
        self._sum = running_sum
        self.steps.append(done)


@pytest.fixture(scope="module")
def trained_run(tiny_dataset, tmp_path_factory):
    """24 steps of the tiny compact model at 128 px (batch 4), 2 validation images, export."""
    recorder = StepLosses()
    cfg = tiny_train_config(tiny_dataset, tmp_path_factory.mktemp("runs") / "base", epochs=2, steps_per_epoch=12, val_fraction=0.125)
    result = train(cfg, progress=recorder)
    return result, recorder


# --- a small training run ------------------------------------------------------------------


def test_training_reduces_the_loss(trained_run) -> None:
    result, recorder = trained_run
    losses = np.array(recorder.losses)
    assert recorder.steps == list(range(1, 25))
    assert np.isfinite(losses).all()
    # batches of 4 are noisy (one hard image can triple a step's box loss): medians of 6
    first, last = float(np.median(losses[:6])), float(np.median(losses[-6:]))
    print(f"\ntraining loss (cls + box), median of 6 steps: first {first:.3f}, last {last:.3f}")
    assert last < 0.9 * first
    assert result.history[-1]["cls_loss"] + result.history[-1]["box_loss"] < result.history[0]["cls_loss"] + result.history[0]["box_loss"]


def test_run_folder_holds_config_history_weights_and_model(trained_run, tiny_dataset) -> None:
    result, _ = trained_run
    run = result.run_dir
    for name in (MODEL_CONFIG_FILE, TRAIN_CONFIG_FILE, HISTORY_FILE, WEIGHTS_FILE, ONNX_FILE, "checkpoints/checkpoint"):
        assert (run / name).is_file(), name
    history = [json.loads(line) for line in (run / HISTORY_FILE).read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"cls_loss", "box_loss", "seconds", "val_ap", "val_ap50"} <= set(history[0])
    assert result.history == history and result.epochs_done == 2
    saved = json.loads((run / TRAIN_CONFIG_FILE).read_text())
    assert saved["data"] == str(tiny_dataset) and saved["size"] == SIZE


def test_exported_model_detects_end_to_end(trained_run, tiny_dataset) -> None:
    from model.contract import read_contract
    from model.imageio import load_image
    from model.postprocess import select
    from model.runtime import Detector

    result, _ = trained_run
    contract = read_contract(result.onnx_path)
    assert contract.class_names == TINY_CLASSES
    assert contract.default_size == SIZE
    provenance = contract.provenance
    assert provenance["epochs"] == 2 and provenance["data"] == str(tiny_dataset) and "val_ap" in provenance

    detector = Detector.load(result.onnx_path, providers=["cpu"])
    image = load_image(sorted(tiny_dataset.glob("*.jpg"))[0])
    out = detector.run(image, floor=0.001)  # 24 steps: scores are still low
    assert out.scores.shape == (out.anchor_offsets[-1], 3)
    assert np.isfinite(out.boxes).all() and ((out.scores >= 0) & (out.scores <= 1)).all()
    detections = select(out.candidates, score_thresh=0.0, iou_thresh=0.5)
    assert len(detections.scores) > 0
    h, w = image.shape[:2]
    assert (detections.boxes[:, [0, 2]] <= w).all() and (detections.boxes[:, [1, 3]] <= h).all()


# --- cancel and resume (in process; the kill test is in test_tf_resume.py) -----------------


def test_cancel_then_resume_continues_from_the_checkpoint(tiny_dataset, tmp_path, capsys) -> None:
    cfg = tiny_train_config(tiny_dataset, tmp_path / "run", epochs=2, steps_per_epoch=3, batch=2, export=False)
    steps: list[int] = []
    first = train(cfg, progress=lambda done, total, info: steps.append(done), cancelled=lambda: len(steps) >= 4)
    assert steps == [1, 2, 3, 4]
    assert first.epochs_done == 1 and first.onnx_path is None
    assert [h["epoch"] for h in read_history(cfg.out)] == [1]
    # As if killed after writing epoch 2's record but before its checkpoint, mid-way
    # through a third line.
    with open(Path(cfg.out) / HISTORY_FILE, "a") as fh:
        fh.write(json.dumps({"epoch": 2, "cls_loss": 99.0, "box_loss": 99.0}) + '\n{"epoch": 3, "cls_lo')
    capsys.readouterr()

    resumed_steps: list[int] = []
    second = train(cfg, progress=lambda done, total, info: resumed_steps.append(done))
    assert "resuming from epoch 1" in capsys.readouterr().err
    assert resumed_steps == [4, 5, 6]  # epoch 2 only
    history = read_history(cfg.out)
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["cls_loss"] != 99.0  # the record of the epoch that was redone
    assert len((Path(cfg.out) / HISTORY_FILE).read_text().splitlines()) == 2
    assert [h["epoch"] for h in second.history] == [1, 2] and second.epochs_done == 2
    assert (Path(cfg.out) / WEIGHTS_FILE).is_file()


def test_read_history_keeps_the_last_record_per_epoch(tmp_path) -> None:
    lines = [{"epoch": 1, "v": "a"}, {"epoch": 2, "v": "b"}, {"epoch": 2, "v": "c"}, {"epoch": 3, "v": "d"}]
    (tmp_path / HISTORY_FILE).write_text("".join(json.dumps(r) + "\n" for r in lines) + "garbage\n")
    assert [r["v"] for r in read_history(tmp_path)] == ["a", "c", "d"]
    assert [r["v"] for r in read_history(tmp_path, up_to_epoch=2)] == ["a", "c"]
    assert read_history(tmp_path / "missing") == []


def test_missing_backbone_weights_file_fails_before_writing_anything(tiny_dataset, tmp_path) -> None:
    cfg = tiny_train_config(tiny_dataset, tmp_path / "run", backbone="resnet50", compact=False, backbone_weights=str(tmp_path / "r50.h5"))
    with pytest.raises(FileNotFoundError, match="r50.h5"):
        train(cfg)
    assert not (tmp_path / "run").exists()


# --- fine-tuning ---------------------------------------------------------------------------


def _layer_weights(model, name: str) -> list[np.ndarray]:
    for layer in model.layers:
        for sub in layer.layers if getattr(layer, "layers", None) else [layer]:
            if sub.name == name:
                return sub.get_weights()
    raise KeyError(name)


def test_fine_tune_with_an_extra_class_keeps_the_learned_weights(trained_run, tmp_path) -> None:
    """--init-from a finished run on data with one more class: the union of classes, the
    source run's architecture (even though backbone/compact are left at their defaults
    here), its weights copied. A learning rate of 0 makes the copy observable after
    training ran."""
    from model.tf.train import load_run_model

    source_run = trained_run[0].run_dir
    data = write_tiny_dataset(tmp_path / "data", count=6, seed=5, class_names=("star", "circle", "square", "triangle"))
    cfg = TrainConfig(
        data=str(data), out=str(tmp_path / "fine"), init_from=str(source_run), size=SIZE, batch=2, epochs=1,
        steps_per_epoch=2, val_fraction=0.0, learning_rate=0.0, export=False,
    )
    result = train(cfg)
    assert result.epochs_done == 1 and len(result.history) == 1

    new_model, new_config = load_run_model(result.run_dir)
    old_model, old_config = load_run_model(source_run)
    assert new_config.class_names == ("circle", "square", "triangle", "star")  # the source's order, then the new class
    assert (new_config.backbone, new_config.pyramid_channels, new_config.head_convs) == ("tiny", 64, 2)
    for name in ("tiny_stem_conv", "tiny_c4_a_conv", "fpn_lateral3", "P5", "P7", "box_head_conv0", "box_head_out", "class_head_conv1"):
        for new, old in zip(_layer_weights(new_model, name), _layer_weights(old_model, name)):
            np.testing.assert_array_equal(new, old, err_msg=name)
    kernel, bias = _layer_weights(new_model, "class_head_out")
    old_kernel, old_bias = _layer_weights(old_model, "class_head_out")
    for k in range(9):
        np.testing.assert_array_equal(kernel[..., k * 4 : k * 4 + 3], old_kernel[..., k * 3 : k * 3 + 3])
        np.testing.assert_array_equal(bias[k * 4 : k * 4 + 3], old_bias[k * 3 : k * 3 + 3])
        assert bias[k * 4 + 3] == pytest.approx(-np.log(99.0), rel=1e-6)  # the new class starts at the prior


def test_fine_tune_measures_its_starting_point_on_the_same_held_out_images(trained_run, tiny_dataset, tmp_path) -> None:
    """A fine-tune evaluates the weights it starts from on its validation split before the
    first step (init_eval.json, the exported model's provenance), reports each epoch's
    validation AP50 to ``epoch_done``, so the app can say whether it beats the
    model it came from. A learning rate of 0 keeps the weights: both figures agree."""
    from model.contract import read_contract
    from model.tf.train import INIT_EVAL_FILE

    records: list[dict] = []
    cfg = TrainConfig(
        data=str(tiny_dataset), out=str(tmp_path / "fine"), init_from=str(trained_run[0].run_dir), size=SIZE, batch=2, epochs=1,
        steps_per_epoch=2, val_fraction=0.25, learning_rate=0.0,
    )
    result = train(cfg, epoch_done=records.append)
    init_eval = json.loads((Path(cfg.out) / INIT_EVAL_FILE).read_text())
    assert init_eval["images"] >= 1 and 0.0 <= init_eval["val_ap50"] <= 1.0
    assert init_eval["val_ap50"] == pytest.approx(result.val.ap50, abs=1e-6)  # unchanged weights
    assert [r["val_ap50"] for r in records] == [pytest.approx(result.val.ap50)]
    provenance = read_contract(result.onnx_path).provenance
    assert provenance["init_val_ap50"] == pytest.approx(round(init_eval["val_ap50"], 4))
    assert provenance["val_ap50"] == pytest.approx(round(result.val.ap50, 4))


def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes(tiny_dataset, tmp_path, capsys) -> None:
    cfg = tiny_train_config(tiny_dataset, tmp_path / "run", epochs=2, steps_per_epoch=3, batch=2, export=False)
    steps: list[int] = []

    def interrupt_at_step_5(done: int, total: int, info: dict) -> None:
        steps.append(done)
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=interrupt_at_step_5)
    assert "interrupted in epoch 2: checkpoint saved" in capsys.readouterr().err
    assert (Path(cfg.out) / "checkpoints" / "checkpoint").is_file()
    resumed: list[int] = []
    result = train(cfg, progress=lambda done, total, info: resumed.append(done))
    assert resumed == [4, 5, 6]  # the interrupted epoch again, from the saved weights
    assert result.epochs_done == 2 and [h["epoch"] for h in read_history(cfg.out)] == [1, 2]


def test_fine_tune_from_a_folder_that_is_not_a_run(tiny_dataset, tmp_path) -> None:
    cfg = tiny_train_config(tiny_dataset, tmp_path / "run", init_from=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a training run folder"):
        train(cfg)


def test_transfer_weights_maps_classes_by_name() -> None:
    import keras

    from model.config import compact_config
    from model.tf.network import build_retinanet

    keras.utils.set_random_seed(3)
    source = build_retinanet(compact_config(("a", "b")))
    target = build_retinanet(compact_config(("b", "c", "a")))
    copied = transfer_weights(source, target, ["a", "b"], ["b", "c", "a"], anchors_per_cell=9)
    assert copied == sum(1 for layer in source.layers for sub in (layer.layers if getattr(layer, "layers", None) else [layer]) if sub.weights)
    np.testing.assert_array_equal(_layer_weights(target, "P3")[0], _layer_weights(source, "P3")[0])
    kernel, bias = _layer_weights(target, "class_head_out")
    s_kernel, s_bias = _layer_weights(source, "class_head_out")
    for k in range(9):
        np.testing.assert_array_equal(kernel[..., 3 * k + 0], s_kernel[..., 2 * k + 1])  # b
        np.testing.assert_array_equal(kernel[..., 3 * k + 2], s_kernel[..., 2 * k + 0])  # a
        assert not np.array_equal(kernel[..., 3 * k + 1], s_kernel[..., 2 * k + 0])  # c: left as initialised


# --- tf.distribute strategy ----------------------------------------------------------------


class FakeStrategy:
    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


def test_default_strategy_on_this_machine(monkeypatch) -> None:
    import tensorflow as tf

    monkeypatch.delenv("TF_CONFIG", raising=False)
    if len(tf.config.list_physical_devices("GPU")) > 1:
        pytest.skip("this machine has several GPUs: auto picks MirroredStrategy")
    strategy = choose_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert is_chief(strategy)
    assert choose_strategy("default") is strategy


def test_tf_config_selects_multi_worker(monkeypatch) -> None:
    """Constructing the real strategy would start a gRPC server and configure collectives
    for the whole process, so the class is replaced: this tests the decision."""
    import tensorflow as tf

    cluster = {"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", FakeStrategy)
    assert isinstance(choose_strategy("auto"), FakeStrategy)
    assert isinstance(choose_strategy("multi-worker"), FakeStrategy)


def test_several_gpus_select_mirrored(monkeypatch) -> None:
    import tensorflow as tf

    monkeypatch.delenv("TF_CONFIG", raising=False)
    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0", "GPU:1"] if kind == "GPU" else real(kind))
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", FakeStrategy)
    assert isinstance(choose_strategy("auto"), FakeStrategy)
    assert isinstance(choose_strategy("mirrored"), FakeStrategy)


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'horovod'"):
        choose_strategy("horovod")


class FakeResolver:
    def __init__(self, task_type, task_id, cluster) -> None:
        self.task_type, self.task_id, self._cluster = task_type, task_id, cluster

    def cluster_spec(self):
        import tensorflow as tf

        return tf.train.ClusterSpec(self._cluster)


@pytest.mark.parametrize(
    ("task_type", "task_id", "cluster", "chief"),
    [
        ("worker", 0, {"worker": ["a:1", "b:1"]}, True),
        ("worker", 1, {"worker": ["a:1", "b:1"]}, False),
        ("chief", 0, {"chief": ["c:1"], "worker": ["a:1"]}, True),
        ("worker", 0, {"chief": ["c:1"], "worker": ["a:1"]}, False),
        ("evaluator", 0, {"worker": ["a:1"], "evaluator": ["e:1"]}, False),
        (None, None, {}, True),
    ],
)
def test_only_the_chief_writes_the_run_folder(task_type, task_id, cluster, chief) -> None:
    strategy = FakeStrategy()
    strategy.cluster_resolver = FakeResolver(task_type, task_id, cluster)
    assert is_chief(strategy) is chief
