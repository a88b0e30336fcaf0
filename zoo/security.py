"""What an export's graphs would do when run: a check made before anything of it runs.

A SavedModel is a program (TensorFlow's own security guidance says so):
its serving functions can hold ops that read or write files, call back into
Python or talk to the network, and `tf.saved_model.load` runs some of its
functions while loading. `scan_export` reads `saved_model.pb` as data,
without loading it, and lists every op kind its functions use, with those
that touch files, processes or the network flagged (`RISKY_OPS`).

What is scanned: every node of the graph and every function of its library
(the signatures, the functions loading runs, the traced methods), except the
checkpoint functions TensorFlow writes to save and restore the variables
(`SaveV2`, `RestoreV2`... there are expected: TensorFlow Serving runs them,
`tf.saved_model.load` does not). What is not: the values of the weights,
and what a signature computes from its inputs (a model can still be wrong,
slow or biased); ops registered by libraries this process has not loaded are
flagged as unknown.

`zoo.load`, `zoo predict`, `zoo evaluate` and `zoo finetune` refuse an
export with flagged ops (`UntrustedExportError`) unless told to trust it;
`zoo inspect EXPORT` shows the scan.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import defaultdict
from pathlib import Path

__all__ = [
    "ExportError",
    "ExportScan",
    "RISKY_OPS",
    "UntrustedExportError",
    "check_export",
    "scan_export",
]


class ExportError(ValueError):
    """An export that cannot be used: missing, corrupt, or not a zoo export. One line."""


class UntrustedExportError(ExportError):
    """An export whose graphs hold ops that touch files, processes or the network."""


_FILES = "reads or writes files"
_PYTHON = "runs Python code"
_NETWORK = "talks to the network or other processes"

RISKY_OPS: dict[str, str] = {
    **dict.fromkeys(
        (
            "ReadFile WriteFile MatchingFiles ImmutableConst "
            "Save SaveV2 SaveSlices Restore RestoreV2 RestoreSlice MergeV2Checkpoints "
            "WholeFileReader WholeFileReaderV2 TextLineReader TextLineReaderV2 TFRecordReader "
            "TFRecordReaderV2 FixedLengthRecordReader FixedLengthRecordReaderV2 LMDBReader "
            "TextLineDataset TFRecordDataset TFRecordDatasetV2 FixedLengthRecordDataset "
            "FixedLengthRecordDatasetV2 CSVDataset CSVDatasetV2 ExperimentalCSVDataset "
            "LMDBDataset ExperimentalLMDBDataset SqlDataset ExperimentalSqlDataset "
            "DatasetToTFRecord ExperimentalDatasetToTFRecord SaveDataset SaveDatasetV2 "
            "LoadDataset SnapshotDataset SnapshotDatasetV2 SnapshotDatasetReader "
            "CacheDataset CacheDatasetV2 InitializeTableFromTextFile InitializeTableFromTextFileV2 "
            "CreateSummaryFileWriter CreateSummaryDbWriter WriteSummary WriteScalarSummary "
            "WriteHistogramSummary WriteImageSummary WriteAudioSummary WriteRawProtoSummary "
            "WriteGraphSummary ImportEvent FlushSummaryWriter DebugIdentity DebugIdentityV2 "
            "DebugIdentityV3 DebugNanCount DebugNumericSummary DebugNumericSummaryV2"
        ).split(),
        _FILES,
    ),
    **dict.fromkeys("PyFunc PyFuncStateless EagerPyFunc".split(), _PYTHON),
    **dict.fromkeys(
        (
            "Rpc TryRpc RpcCall RpcClient RpcServer RpcServerStart RpcServerRegister "
            "RpcCheckStatus RpcGetValue DataServiceDataset DataServiceDatasetV2 "
            "DataServiceDatasetV3 DataServiceDatasetV4 RegisterDataset RegisterDatasetV2 "
            "DistributedSave Send Recv _Send _Recv _HostSend _HostRecv RemoteCall "
            "CollectiveReduce CollectiveReduceV2 CollectiveReduceV3 CollectiveGather "
            "CollectiveGatherV2 CollectiveBcastSend CollectiveBcastRecv CollectiveBcastSendV2 "
            "CollectiveBcastRecvV2 CollectiveAllToAllV2 CollectiveAllToAllV3 "
            "CollectiveInitializeCommunicator GcsConfigureCredentials GcsConfigureBlockCache "
            "BigQueryReader"
        ).split(),
        _NETWORK,
    ),
}
"""Op kinds that reach outside the computation, and what they do."""

# Families of ops that reach files or other processes, caught by name as well, so that
# ops this list does not name yet (TensorFlow adds some every release) are flagged too.
_RISKY_NAMES = re.compile(
    r"File|Reader|Record|TextLine|CSV|Sql|LMDB|Snapshot|Save|Restore|Checkpoint|Summary|Event"
    r"|Rpc|DataService|Collective|PyFunc|Debug|Dump|Remap|Calibration|FromGraph|Remote"
    r"|Matching|Vocab|Load|Send|Recv|FileSystem|Gcs|BigQuery"
)


def _risky(op: str) -> str | None:
    """What `op` reaches outside the computation, or None."""
    if op in RISKY_OPS:
        return RISKY_OPS[op]
    if op == "DatasetFromGraph":
        return "runs a graph hidden in a string (what it reads cannot be checked)"
    if _RISKY_NAMES.search(op):
        return "reads or writes files, or talks to other processes (by its kind)"
    return None


# What the checkpoint functions TensorFlow writes into every SavedModel use.
_CHECKPOINT_OPS = {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename"}


@dataclasses.dataclass(frozen=True)
class Finding:
    """A flagged op: its kind, what it does, and where it is (entry point, function, node)."""

    op: str
    why: str
    where: str
    function: str
    node: str

    def __str__(self) -> str:
        inside = f"function {self.function}" if self.function else "the top-level graph"
        return f"{self.op} ({self.why}) in {self.where}, {inside}, node {self.node!r}"


@dataclasses.dataclass
class ExportScan:
    """What `scan_export` found.

    Attributes:
        path: the version folder.
        signatures: name -> `(inputs, outputs)`, each a dict name -> "dtype[shape]".
        ops: entry point ("signature 'translate'", "loading", ...) -> sorted op kinds.
        checkpoint_ops: op kinds of the checkpoint functions (expected; not run by zoo.load).
        findings: the flagged ops.
    """

    path: Path
    signatures: dict[str, tuple[dict[str, str], dict[str, str]]]
    ops: dict[str, list[str]]
    checkpoint_ops: list[str]
    findings: list[Finding]

    @property
    def trusted(self) -> bool:
        """Whether nothing was flagged."""
        return not self.findings

    def report(self) -> str:
        """The scan as `zoo inspect` prints it."""
        lines = [f"export: {self.path}", "signatures:"]
        for name, (inputs, outputs) in self.signatures.items():
            shown_in = ", ".join(f"{k}: {v}" for k, v in inputs.items())
            shown_out = ", ".join(f"{k}: {v}" for k, v in outputs.items())
            lines.append(f"  {name}({shown_in}) -> {shown_out}")
        grouped: dict[tuple, list[str]] = {}
        for entry, ops in self.ops.items():  # the signatures usually share one graph
            grouped.setdefault(tuple(ops), []).append(entry)
        for ops, entries in grouped.items():
            lines.append(f"ops of {', '.join(entries)} ({len(ops)} kinds):")
            lines.append("  " + ", ".join(ops))
        lines.append(
            "checkpoint functions (restore the variables under TensorFlow Serving; "
            "zoo.load does not run them): " + (", ".join(self.checkpoint_ops) or "none")
        )
        if self.findings:
            lines.append(
                f"flagged ({len(self.findings)}): ops that touch files, processes or the network"
            )
            lines += [f"  {finding}" for finding in self.findings]
        else:
            lines.append("flagged: none (no op that touches files, processes or the network)")
        return "\n".join(lines)


def _read(path: Path):
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = path / "saved_model.pb"
    if not pb.is_file():
        raise ExportError(f"{path}: no saved_model.pb (not an export version folder)")
    model = saved_model_pb2.SavedModel()
    try:
        model.ParseFromString(pb.read_bytes())
    except (DecodeError, RuntimeWarning, ValueError) as error:
        raise ExportError(
            f"{pb} is corrupt or truncated ({error}); export the model again"
        ) from None
    if len(model.meta_graphs) != 1 or not model.meta_graphs[0].HasField("object_graph_def"):
        # A TensorFlow 1 SavedModel: loading runs its restore op and init ops as
        # graphs, which no zoo export has.
        raise ExportError(
            f"{pb} is not a TensorFlow 2 SavedModel ({len(model.meta_graphs)} graphs, "
            "no object graph): not a zoo export"
        )
    return model.meta_graphs[0]


def _called_functions(node, library) -> list[str]:
    """Names of the functions a node calls: by its attributes (`f`, branches, loop
    bodies, nested in other functions' attributes) or as its op (a function called by name)."""
    names = [node.op] if node.op in library else []
    stack = list(node.attr.values())
    while stack:
        value = stack.pop()
        functions = [value.func] if value.HasField("func") else []
        functions += list(value.list.func)
        for function in functions:
            names.append(function.name)
            stack += list(function.attr.values())
    return names


def _spec(info) -> str:
    from tensorflow.python.framework import dtypes

    try:
        dtype = dtypes.as_dtype(info.dtype).name
    except TypeError:
        dtype = str(info.dtype)
    if info.tensor_shape.unknown_rank:
        return f"{dtype}[...]"
    dims = ",".join("?" if d.size < 0 else str(d.size) for d in info.tensor_shape.dim)
    return f"{dtype}[{dims}]"


def _is_registered(op: str) -> bool:
    from tensorflow.python.framework import op_def_registry

    return op_def_registry.get(op) is not None


def _odd_attributes(node) -> str | None:
    """Why a usually harmless op writes a file (`PrintV2` to a file://, protos from a file)."""
    if node.op == "PrintV2":
        stream = node.attr["output_stream"].s.decode("utf-8", "replace")
        if stream.startswith("file://"):
            return f"prints to a file ({stream})"
    if node.op in ("DecodeProtoV2", "EncodeProto"):
        source = node.attr["descriptor_source"].s.decode("utf-8", "replace")
        if source and source != "local://":
            return f"reads protocol descriptors from {source}"
    return None


def scan_export(path: str | os.PathLike) -> ExportScan:
    """Scans the version folder `path` (a `saved_model.pb`) without loading it."""
    import tensorflow_text  # noqa: F401  (registers the ops zoo exports use)

    path = Path(path)
    graph = _read(path)
    library = {f.signature.name: f for f in graph.graph_def.library.function}
    nodes = {n.name: n for n in graph.graph_def.node}

    def closure(roots: list[str]) -> tuple[set[str], set[str]]:
        """The top-level nodes the tensors `roots` depend on, and the functions they call."""
        seen_nodes: set[str] = set()
        stack = [r.split(":")[0].lstrip("^") for r in roots if r]
        while stack:
            name = stack.pop()
            if name in seen_nodes or name not in nodes:
                continue
            seen_nodes.add(name)
            stack += [i.split(":")[0].lstrip("^") for i in nodes[name].input]
        calls = [f for n in seen_nodes for f in _called_functions(nodes[n], library)]
        return seen_nodes, calls_from(calls)

    def calls_from(function_names) -> set[str]:
        """The functions `function_names` name, and all those they call, transitively."""
        out, calls = set(), list(function_names)
        while calls:
            name = calls.pop()
            if name in out or name not in library:
                continue
            out.add(name)
            calls += [f for n in library[name].node_def for f in _called_functions(n, library)]
        return out

    saver = graph.saver_def
    saver_nodes, saver_functions = closure([saver.save_tensor_name, saver.restore_op_name])
    entries: dict[str, tuple[set[str], set[str]]] = {}
    signatures = {}
    for key, signature in graph.signature_def.items():
        if key == "__saved_model_init_op":
            continue
        entries[f"signature {key!r}"] = closure([t.name for t in signature.outputs.values()])
        signatures[key] = (
            {k: _spec(v) for k, v in signature.inputs.items()},
            {k: _spec(v) for k, v in signature.outputs.items()},
        )
    # Everything else: the init op, the functions loading runs (resources'
    # initialisers), the traced methods the loaded object exposes.
    claimed_nodes = set().union(saver_nodes, *(n for n, _ in entries.values()))
    claimed_functions = set().union(*(f for _, f in entries.values()))
    other_roots = [f for f in library if f not in claimed_functions and f not in saver_functions]
    other_functions = calls_from(other_roots)
    other_nodes = set(nodes) - claimed_nodes
    other_functions |= calls_from(
        f for n in other_nodes for f in _called_functions(nodes[n], library)
    )
    entries["loading and the other functions"] = (other_nodes, other_functions)
    # The checkpoint functions TensorFlow writes, when only the saver calls them: their
    # file ops are expected there. The saver's own top-level nodes are scanned.
    checkpoint_only = {
        f
        for f in saver_functions - set().union(*(f for _, f in entries.values()))
        if f.startswith(("__inference__traced_save_", "__inference__traced_restore_"))
    }
    entries["the checkpoint's graph"] = (saver_nodes, saver_functions - checkpoint_only)

    findings: list[Finding] = []
    ops: dict[str, list[str]] = {}
    for entry, (entry_nodes, entry_functions) in entries.items():
        kinds: set[str] = set()
        located = [("", nodes[n]) for n in sorted(entry_nodes)]
        located += [(f, n) for f in sorted(entry_functions) for n in library[f].node_def]
        for function, node in located:
            kinds.add(node.op)
            why = _risky(node.op) or _odd_attributes(node)
            if why is None and not _is_registered(node.op) and node.op not in library:
                why = "is not a TensorFlow op this process knows (a custom kernel library)"
            if why:
                findings.append(Finding(node.op, why, entry, function, node.name))
        ops[entry] = sorted(kinds)
    checkpoint_ops: set[str] = set()
    for function in sorted(checkpoint_only):
        for node in library[function].node_def:
            checkpoint_ops.add(node.op)
            why = _risky(node.op) if node.op not in _CHECKPOINT_OPS else None
            if why:
                findings.append(
                    Finding(node.op, why, "the checkpoint functions", function, node.name)
                )
    return ExportScan(path, signatures, ops, sorted(checkpoint_ops), _unique(findings))


def _unique(findings: list[Finding]) -> list[Finding]:
    """One finding per (op, entry point, function): a loop body is not listed per copy."""
    seen: dict[tuple, Finding] = {}
    for finding in findings:
        seen.setdefault((finding.op, finding.where, finding.function), finding)
    return list(seen.values())


def check_export(path: str | os.PathLike, *, trust: bool = False) -> ExportScan:
    """Scans `path` and refuses it (`UntrustedExportError`) when an op is flagged and not `trust`."""
    scan = scan_export(path)
    if scan.findings and not trust:
        by_op: dict[str, list[Finding]] = defaultdict(list)
        for finding in scan.findings:
            by_op[finding.op].append(finding)
        first = scan.findings[0]
        raise UntrustedExportError(
            f"{scan.path}: refused to run an export whose graph holds ops that touch files, "
            f"processes or the network: {', '.join(sorted(by_op))}; first: {first}. "
            f"See them all with `zoo inspect {scan.path}`; trust it only if you trust who made "
            "it (--trust, or trust=True)"
        )
    return scan
