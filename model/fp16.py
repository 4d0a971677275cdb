"""fp16 copies of contract models, for GPUs (tensor cores run fp16 convolutions).

Only the network body runs in fp16: every node on a path from a convolution to a
convolution (backbone, FPN, heads). The preprocessing before the first convolution, the
box decoding after the heads (anchors, ``exp``, pixel coordinates up to thousands, where
fp16's step is 0.5-2 px) and the sigmoid stay fp32, and so do the graph's inputs and
outputs (``keep_io_types``): the contract is unchanged and the runtime needs no change.

The conversion is onnxruntime's own ``onnxruntime.transformers.float16`` (the maintained
copy of onnxconverter-common's converter) with a node block list. Needs ``onnx`` only: no
TensorFlow.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import onnx

from model import contract as C
from model.labels.atomic import atomic_write_bytes

PRECISION = "fp16 (network body; preprocessing, box decoding and sigmoid in fp32)"


def _name_nodes(graph: onnx.GraphProto) -> None:
    """Give unnamed nodes unique names (the block list goes by node name)."""
    taken = {n.name for n in graph.node if n.name}
    for i, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_unnamed_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _split_shared_resize_inputs(graph: onnx.GraphProto) -> None:
    """tf2onnx feeds one empty tensor to Resize as both ``roi`` and ``scales``; the
    converter keeps ``scales`` fp32 and would add two Cast nodes with one name. ``roi`` is
    unused outside tf_crop_and_resize mode, so it is dropped (an optional input)."""
    for node in graph.node:
        if node.op_type != "Resize" or len(node.input) < 3 or node.input[1] != node.input[2]:
            continue
        mode = next((a.s for a in node.attribute if a.name == "coordinate_transformation_mode"), b"")
        if mode != b"tf_crop_and_resize":
            node.input[1] = ""


def network_body(graph: onnx.GraphProto) -> set[str]:
    """Names of the nodes that lie on a path from a Conv to a Conv (both included)."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    convs = [n for n in graph.node if n.op_type == "Conv"]

    def reach(start: list[onnx.NodeProto], step) -> set[str]:
        seen: set[str] = set()
        stack = list(start)
        while stack:
            node = stack.pop()
            if node.name in seen:
                continue
            seen.add(node.name)
            stack.extend(step(node))
        return seen

    after_a_conv = reach(convs, lambda n: [c for out in n.output for c in consumers[out]])
    before_a_conv = reach(convs, lambda n: [producer[i] for i in n.input if i in producer])
    return after_a_conv & before_a_conv


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor onnx's type inference can name."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {t.name: t.data_type for t in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        types[info.name] = info.type.tensor_type.elem_type
    return types


def _drop_duplicate_nodes(graph: onnx.GraphProto) -> None:
    """The converter inserts one Cast per (tensor, consumer) with a name made from the
    tensor only: a tensor read by two fp32 consumers gets two identical nodes. Keep one."""
    seen: set[bytes] = set()
    kept = []
    for node in graph.node:
        key = node.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)


def _drop_cast_round_trips(model: onnx.ModelProto) -> None:
    """Cast(fp32 -> fp16) then Cast(-> fp32): the converter puts one in front of every
    fp32 consumer of an fp16 tensor, including the graph input (keep_io_types), and gives
    the copies for one tensor one name. Consumers get the fp32 tensor itself instead: no
    rounding of the input pixels, no duplicate nodes."""
    graph = model.graph
    types = _elem_types(model)
    producer = {out: node for node in graph.node for out in node.output}
    graph_outputs = {o.name for o in graph.output}

    def cast_to(node: onnx.NodeProto) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((a.i for a in node.attribute if a.name == "to"), None)

    replace: dict[str, str] = {}
    dead: set[int] = set()
    for node in graph.node:
        if cast_to(node) != onnx.TensorProto.FLOAT or node.output[0] in graph_outputs:
            continue
        first = producer.get(node.input[0])
        if first is None or cast_to(first) != onnx.TensorProto.FLOAT16:
            continue
        if types.get(first.input[0]) != onnx.TensorProto.FLOAT:
            continue
        replace[node.output[0]] = first.input[0]
        dead.add(id(node))
    kept = [n for n in graph.node if id(n) not in dead]
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = replace.get(name, name)
    used = {name for n in kept for name in n.input} | graph_outputs
    kept = [n for n in kept if any(out in used for out in n.output)]
    del graph.node[:]
    graph.node.extend(kept)


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """The converter appends the Cast nodes it inserts; onnx's checker (and other tools)
    want producers before consumers. Kahn's algorithm, keeping the original order where
    it is already right."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:
            raise ValueError(f"the graph has a cycle or a dangling input at {pending[0].name}")
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
        for node in ready:
            ordered.append(node)
            available.update(node.output)
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The fp16 model of a contract model ``proto`` (``proto`` itself is left alone)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    source = onnx.ModelProto()
    source.CopyFrom(proto)
    graph = source.graph
    if not any(n.op_type == "Conv" for n in graph.node):
        raise ValueError("the graph has no convolutions: nothing to run in fp16")
    _name_nodes(graph)
    _split_shared_resize_inputs(graph)
    body = network_body(graph)
    blocked = [n.name for n in graph.node if n.name not in body]
    half = convert_float_to_float16(
        source,
        keep_io_types=True,
        op_block_list=DEFAULT_OP_BLOCK_LIST,
        node_block_list=blocked,
    )
    _drop_duplicate_nodes(half.graph)
    _drop_cast_round_trips(half)
    _sort_topologically(half.graph)
    C.copy_metadata(proto, half, precision=PRECISION)
    return half


def convert_fp16(fp32_path: str | Path, out_path: str | Path) -> onnx.ModelProto:
    """Write the fp16 copy of the contract model at ``fp32_path`` to ``out_path``.

    Raises ModelContractError naming ``fp32_path`` when it is not a contract model."""
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    C.read_contract(fp32_path)  # refuse what is not a contract model, naming the file
    half = to_fp16(onnx.load(str(fp32_path)))
    C.contract_from_proto(half, out_path)  # never write a file that breaks the contract
    atomic_write_bytes(out_path, half.SerializeToString())
    return half
