"""Proof: does a cited, existing piece of code show what the reviewer says it shows?

The gate (`gate.py`) only establishes that a quote is really on the cited lines. A quote is a
location, not a proof: `def build_model(ctx):` quoted as hidden behaviour, or a comment saying
"never reads os.environ" quoted as exfiltration, passes the gate. A rejection stands only when
PRISM re-derives the finding itself, deterministically, from the cited lines:

- a finding PRISM computed before the review (`ReviewContext.findings`: a measured claim
  contradiction in prism.yaml, ...) for the same rule on those lines; or
- the rule's own check below, on the code (never the comments, never the text of a string except
  where the rule is about text) whose nodes lie wholly inside the cited range.

| rule | what the cited code must contain |
| --- | --- |
| secret_exfiltration | a secret source (`os.environ`, `os.getenv`, ...) or a way out (network, process) |
| network_escape | a network module or call (`socket`, `urllib`, `http.client`, `requests`, ...) |
| filesystem_escape | a filesystem call (`open`, `os.listdir`, `Path.read_text`, `shutil.*`, `torch.load`, ...) |
| process_escape | a process, native-code or signal call (`subprocess`, `os.system`, `ctypes`, ...) |
| hidden_behaviour | dynamic code, an encoded payload, introspection of the caller, a trigger on time, \
host or environment, or a patch of a library's attribute |
| prompt_injection | text (comment or string) addressed to the reviewer ("ignore previous instructions") |
| unsupported_claims | a PRISM-measured contradiction on those lines of prism.yaml (context findings) |
| plagiarism | never: copying is decided by PRISM's duplicate review alone (`plagiarism_is_overruled`) |
| anything else | only a context finding with that rule id |

Names are resolved through the file's imports (`from os import environ as e` makes `e` mean
`os.environ`), so a rename does not hide a call; a call the table does not know is no proof,
and the claim is kept as suspicion (quarantine) for an operator.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prism import pyast
from prism.intake.project import Project
from prism.review.llm.gate import sanitize_rule_id, source_lines
from prism.review.llm.types import ClaimedEvidence, Finding

PLAGIARISM = "plagiarism"
_ALIASES = {
    "hidden_behavior": "hidden_behaviour",
    "exfiltration": "secret_exfiltration",
    "secret_exfil": "secret_exfiltration",
    "network": "network_escape",
    "filesystem": "filesystem_escape",
    "process": "process_escape",
    "copied_code": PLAGIARISM,
    "copy": PLAGIARISM,
    "plagiarised": PLAGIARISM,
    "plagiarized": PLAGIARISM,
    "metric_claims": "unsupported_claims",
    "injection": "prompt_injection",
}

_SECRET_SOURCES = ("os.environ", "os.environb", "os.getenv", "os.getenvb", "posix.environ", "nt.environ")
_NETWORK = (
    "socket",
    "ssl",
    "urllib",
    "http.client",
    "http.server",
    "requests",
    "httpx",
    "aiohttp",
    "ftplib",
    "smtplib",
    "telnetlib",
    "poplib",
    "imaplib",
    "xmlrpc",
    "asyncio.open_connection",
    "asyncio.start_server",
    "torch.hub",
    "torch.distributed",
    "urllib3",
    "websocket",
    "paramiko",
)
_PROCESS = (
    "subprocess",
    "os.system",
    "os.popen",
    "os.exec",
    "os.spawn",
    "os.fork",
    "os.kill",
    "os.killpg",
    "os._exit",
    "os.posix_spawn",
    "pty",
    "signal",
    "ctypes",
    "cffi",
    "multiprocessing",
    "resource",
    "sys.settrace",
    "sys.setprofile",
    "torch.ops.load_library",
    "torch.utils.cpp_extension",
)
_FILESYSTEM = (
    "open",
    "io.open",
    "os.open",
    "os.listdir",
    "os.scandir",
    "os.walk",
    "os.remove",
    "os.unlink",
    "os.rename",
    "os.replace",
    "os.mkdir",
    "os.makedirs",
    "os.rmdir",
    "os.chdir",
    "os.stat",
    "os.readlink",
    "os.symlink",
    "os.chmod",
    "os.path.exists",
    "os.path.isfile",
    "os.path.isdir",
    "shutil",
    "glob",
    "tempfile",
    "pathlib",
    "torch.load",
    "torch.save",
    "numpy.load",
    "numpy.save",
    "numpy.fromfile",
    "builtins.open",
)
_PATH_METHODS = frozenset(
    {"read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "rglob", "unlink", "rmdir", "touch"}
)
_DYNAMIC = (
    "exec",
    "eval",
    "compile",
    "__import__",
    "importlib",
    "builtins",
    "globals",
    "vars",
    "sys.modules",
    "sys._getframe",
    "inspect.stack",
    "inspect.currentframe",
    "inspect.getsource",
    "traceback",
    "gc.get_objects",
    "gc.get_referrers",
    "marshal",
    "pickle",
    "base64",
    "codecs.decode",
    "zlib",
    "lzma",
    "bz2",
    "types.FunctionType",
    "types.CodeType",
)
_TRIGGERS = (
    "time.time",
    "time.localtime",
    "time.gmtime",
    "datetime",
    "socket.gethostname",
    "platform",
    "os.getpid",
    "os.getppid",
    "os.getuid",
    "os.uname",
    "getpass",
    *_SECRET_SOURCES,
)
_PREFIX_ONLY = frozenset({"os.exec", "os.spawn"})  # os.execv, os.spawnlp, ...
# Builtins that name a capability by themselves; any other unimported root is a local variable.
_BUILTINS = frozenset({"open", "exec", "eval", "compile", "__import__", "globals", "vars", "breakpoint"})
_DUNDER_ESCAPES = frozenset({"__subclasses__", "__globals__", "__builtins__", "__code__", "__closure__", "__mro__"})
_INJECTION = re.compile(
    r"ignore (all |any |the )?(previous|prior|above|earlier|preceding) (instructions|rules|prompts?)"
    r"|disregard (all |any |the )?(previous|prior|above|earlier) "
    r"|(you are|you're) (now )?(an?|the) (ai|assistant|reviewer|llm|language model)"
    r"|\b(submit_verdict|submit_mermaid)\b"
    r"|(reviewer|assistant|llm|ai)[,:]? (must|should|please|you must) (approve|accept|pass)"
    r"|\bapprove (this|the) (submission|code|model)\b"
    r"|\bsystem prompt\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ProofResult:
    proven: bool
    how: str  # what proved it, or why nothing did


def canonical_rule(rule_id: str) -> str:
    rule = sanitize_rule_id(rule_id)
    return _ALIASES.get(rule, rule)


def plagiarism_is_overruled(claims: Sequence[ClaimedEvidence], rule_ids: Sequence[str]) -> bool:
    """True when a rejection rests on plagiarism alone: PRISM's duplicate report decides that."""
    rules = {canonical_rule(c.rule_id) for c in claims} or {canonical_rule(r) for r in rule_ids}
    return bool(rules) and rules == {PLAGIARISM}


def prove(project: Project, claim: ClaimedEvidence, findings: Sequence[Finding]) -> ProofResult:
    """Whether the (already gate-verified) cited lines carry a finding PRISM re-derives for the rule."""
    rule = canonical_rule(claim.rule_id)
    for finding in findings:
        if (
            canonical_rule(finding.rule_id) == rule
            and finding.path == claim.path
            and finding.line_start <= claim.line_end
            and claim.line_start <= finding.line_end
        ):
            return ProofResult(True, f"PRISM's own finding: {finding.explanation}")
    if rule == PLAGIARISM:
        return ProofResult(False, "plagiarism is decided by PRISM's duplicate review, not by the reviewer")
    text = project.files.get(claim.path, "")
    if rule == "prompt_injection":
        return check_injection(text, claim.line_start, claim.line_end)
    check = _CHECKS.get(rule)
    if check is None:
        return ProofResult(False, f"PRISM has no deterministic check for rule {rule!r} and no finding on these lines")
    if not claim.path.endswith(".py"):
        return ProofResult(False, f"{claim.path} is not Python code")
    try:
        tree = pyast.parse(text)
    except (SyntaxError, ValueError):
        return ProofResult(False, f"{claim.path} does not parse")
    names = _ImportNames.of(tree)
    hits = sorted({hit for node in _nodes_within(tree, claim.line_start, claim.line_end) for hit in check(node, names)})
    hits = [h for h in hits if not any(o != h and o.startswith(h + ".") for o in hits)]  # the longest names
    if hits:
        return ProofResult(True, f"the cited code uses {', '.join(hits[:5])}")
    return ProofResult(False, f"the cited code contains nothing that shows {rule} (comments and names are no proof)")


def check_injection(text: str, line_start: int, line_end: int) -> ProofResult:
    """Comments and strings on the cited lines that address the reviewer."""
    lines = source_lines(text)[line_start - 1 : line_end]
    fragments: list[str] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
            if token.type in (tokenize.COMMENT, tokenize.STRING):
                fragments.append(token.string)
    except (tokenize.TokenError, SyntaxError):
        fragments = lines  # not Python (or cut mid-string): the lines themselves are the text
    for fragment in fragments:
        match = _INJECTION.search(" ".join(fragment.split()))
        if match:
            return ProofResult(True, f"text addressed to the reviewer: {match.group(0)!r}")
    return ProofResult(False, "no text on the cited lines addresses the reviewer")


class _ImportNames:
    """Local name -> dotted origin, from every import in the file."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    @classmethod
    def of(cls, tree: ast.Module) -> _ImportNames:
        table: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    table[bound] = alias.name if alias.asname else bound
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    table[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        return cls(table)

    def dotted(self, node: ast.expr) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        if node.id not in self.table and node.id not in _BUILTINS:
            return None  # a local variable: `signal = x; signal.mean()` is no signal call
        head = self.table.get(node.id, node.id)
        return ".".join([head, *reversed(parts)])


def _nodes_within(tree: ast.Module, start: int, end: int) -> Iterator[ast.AST]:
    """Expressions and imports that begin and end inside the cited lines (a `def` line is not its body)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.expr | ast.Import | ast.ImportFrom | ast.Assign | ast.AugAssign):
            first, last = getattr(node, "lineno", 0), getattr(node, "end_lineno", 0) or 0
            if start <= first and last <= end:
                yield node


def _matches(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") or (p in _PREFIX_ONLY and name.startswith(p)) for p in prefixes)


def _uses(node: ast.AST, names: _ImportNames, prefixes: Sequence[str]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if _matches(a.name, prefixes))
    elif isinstance(node, ast.ImportFrom) and node.module:
        yield from (f"{node.module}.{a.name}" for a in node.names if _matches(f"{node.module}.{a.name}", prefixes))
    elif isinstance(node, ast.Attribute | ast.Name):
        name = names.dotted(node)
        if name is not None and _matches(name, prefixes):
            yield name


def _network(node: ast.AST, names: _ImportNames) -> Iterator[str]:
    yield from _uses(node, names, _NETWORK)


def _process(node: ast.AST, names: _ImportNames) -> Iterator[str]:
    yield from _uses(node, names, _PROCESS)


def _secret(node: ast.AST, names: _ImportNames) -> Iterator[str]:
    yield from _uses(node, names, (*_SECRET_SOURCES, *_NETWORK, *_PROCESS))


def _filesystem(node: ast.AST, names: _ImportNames) -> Iterator[str]:
    yield from _uses(node, names, _FILESYSTEM)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _PATH_METHODS:
        yield f".{node.func.attr}()"


def _hidden(node: ast.AST, names: _ImportNames) -> Iterator[str]:
    yield from _uses(node, names, (*_DYNAMIC, *_TRIGGERS))
    if isinstance(node, ast.Attribute) and node.attr in _DUNDER_ESCAPES:
        yield node.attr
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "setattr")
        and len(node.args) >= 2
        and not isinstance(node.args[1], ast.Constant)
    ):
        yield f"{node.func.id} with a computed name"
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute):
                origin = names.dotted(target.value)
                # `torch.backends.cudnn.deterministic = True` is a setting, not a patch.
                if (
                    origin is not None
                    and origin.split(".")[0] in {*names.table.values(), "torch", "builtins"}
                    and not origin.startswith("torch.backends")
                ):
                    yield f"assignment to library attribute {origin}.{target.attr}"


_CHECKS = {
    "secret_exfiltration": _secret,
    "network_escape": _network,
    "filesystem_escape": _filesystem,
    "process_escape": _process,
    "hidden_behaviour": _hidden,
}
