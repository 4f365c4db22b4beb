"""The Tiltfile, loaded without Tilt: stub built-ins that record every call.

Starlark is close enough to Python for `exec`: the stubs stand in for Tilt's built-ins
and extensions, `helm()` renders the chart for real (ordermesh.chart, the same values
files), and after the file has run, `assemble` groups the Kubernetes objects into
resources the way Tilt does (a resource per workload, Services joining the workload
they select, `k8s_resource(objects=...)` claiming what is left), raising Tilt's errors
for unknown resources and objects. `starlark_problems` refuses the Python a Starlark
interpreter would not load.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ordermesh import chart
from ordermesh.paths import REPO_ROOT

TILTFILE = REPO_ROOT / "Tiltfile"
Manifest = dict[str, Any]
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod"})


class Blob(str):
    """What read_file, helm and encode_yaml_stream return: YAML text, not a path."""


class AssemblyError(Exception):
    """What `tilt up` would refuse the Tiltfile with."""


@dataclass(frozen=True)
class Step:
    """A live_update step: fall_back_on(paths), sync(local, remote) or run(command)."""

    kind: str
    args: tuple[Any, ...]


@dataclass
class ImageBuild:
    ref: str
    context: str
    dockerfile: str
    target: str | None
    entrypoint: list[str] | None
    only: list[str]
    live_update: list[Step]

    def steps(self, kind: str) -> list[Step]:
        return [step for step in self.live_update if step.kind == kind]


@dataclass
class K8sResourceCall:
    workload: str | None
    new_name: str | None
    objects: list[str]
    labels: list[str]
    resource_deps: list[str]
    port_forwards: list[PortForward]

    @property
    def name(self) -> str:
        return self.new_name or self.workload or ""


@dataclass(frozen=True)
class PortForward:
    local_port: int
    container_port: int
    name: str | None = None


@dataclass
class Resource:
    """A Kubernetes resource as Tilt assembles it."""

    name: str
    objects: list[Manifest] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    resource_deps: list[str] = field(default_factory=list)
    port_forwards: list[PortForward] = field(default_factory=list)

    @property
    def workloads(self) -> list[Manifest]:
        return [obj for obj in self.objects if obj["kind"] in WORKLOAD_KINDS]


@dataclass
class TiltRun:
    """Everything one load of the Tiltfile asked Tilt to do."""

    allowed_contexts: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # every file or folder it names
    images: dict[str, ImageBuild] = field(default_factory=dict)
    objects: list[Manifest] = field(default_factory=list)  # all YAML given to k8s_yaml
    k8s_calls: list[K8sResourceCall] = field(default_factory=list)
    local_resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    helm_resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    helm_renders: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, Resource] = field(default_factory=dict)  # after assemble()

    def resource_names(self) -> set[str]:
        return set(self.resources) | set(self.local_resources) | set(self.helm_resources)


def load(source: str | None = None, *, root: Path = REPO_ROOT) -> TiltRun:
    """Run the Tiltfile (or `source`, as if it were the Tiltfile) and assemble it."""
    text = TILTFILE.read_text() if source is None else source
    run = TiltRun()
    namespace = _builtins(run, root)
    exec(compile(text, str(TILTFILE), "exec"), namespace)
    assemble(run)
    return run


def _builtins(run: TiltRun, root: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "tiltfile"}

    def path(name: str) -> Path:
        """A path the Tiltfile names (watched, synced, built from): checked afterwards."""
        run.paths.append(name)
        return root / name

    def readable(name: str) -> Path:
        """A file the Tiltfile reads while it loads: Tilt stops right there without it."""
        found = path(name)
        if not found.is_file():
            raise AssemblyError(f"{name}: no such file")
        return found

    def load_(module: str, *symbols: str) -> None:
        extensions: dict[str, dict[str, Callable[..., None]]] = {
            "ext://restart_process": {"docker_build_with_restart": docker_build_with_restart},
            "ext://helm_resource": {"helm_resource": helm_resource},
        }
        if module not in extensions:
            raise AssemblyError(f"no stub for the extension {module}")
        for symbol in symbols:
            namespace[symbol] = extensions[module][symbol]

    def read_file(name: str) -> Blob:
        return Blob(readable(name).read_text())

    def decode_yaml_stream(text: str) -> list[Manifest]:
        return [doc for doc in yaml.safe_load_all(text) if doc]

    def encode_yaml_stream(objects: Iterable[Manifest]) -> Blob:
        return Blob(yaml.safe_dump_all(list(objects), sort_keys=False))

    def helm(
        chart_dir: str, *, name: str = "", namespace: str = "", values: Iterable[str] = ()
    ) -> Blob:
        files = [readable(value) for value in values]
        if path(chart_dir).resolve() != chart.CHART_DIR.resolve():
            raise AssemblyError(f"helm() of {chart_dir}: only charts/ordermesh is rendered here")
        run.helm_renders.append({"name": name, "namespace": namespace, "values": list(values)})
        rendered = chart.render(chart.load_values(files), release=name, namespace=namespace)
        return Blob(yaml.safe_dump_all(rendered, sort_keys=False))

    def k8s_yaml(yaml_or_paths: str | list[str]) -> None:
        if isinstance(yaml_or_paths, Blob):
            run.objects.extend(decode_yaml_stream(yaml_or_paths))
            return
        for name in [yaml_or_paths] if isinstance(yaml_or_paths, str) else yaml_or_paths:
            run.objects.extend(decode_yaml_stream(readable(name).read_text()))

    def docker_build(
        ref: str,
        context: str,
        *,
        dockerfile: str = "Dockerfile",
        target: str | None = None,
        entrypoint: list[str] | None = None,
        only: Iterable[str] = (),
        live_update: Iterable[Step] = (),
        **_: Any,
    ) -> None:
        if ref in run.images:
            raise AssemblyError(f"image {ref} is built twice")
        path(context)
        path(dockerfile)  # Tilt resolves it from the Tiltfile's folder, as here
        for name in only:
            path(str(Path(context) / name))
        run.images[ref] = ImageBuild(
            ref, context, dockerfile, target, entrypoint, list(only), list(live_update)
        )

    def docker_build_with_restart(
        ref: str,
        context: str,
        entrypoint: list[str],
        live_update: list[Step],
        *,
        restart_file: str = "/.restart-proc",
        **kwargs: Any,
    ) -> None:
        # As the extension does: the command becomes the wrapper, re-running the
        # entrypoint whenever a last live_update step rewrites the restart file.
        if not live_update:
            raise AssemblyError("docker_build_with_restart needs live_update steps")
        wrapped = ["/tilt-restart-wrapper", f"--watch_file={restart_file}", *entrypoint]
        steps = [*live_update, Step("run", (f"date > {restart_file}",))]
        docker_build(ref, context, entrypoint=wrapped, live_update=steps, **kwargs)

    def fall_back_on(paths: str | list[str]) -> Step:
        names = [paths] if isinstance(paths, str) else list(paths)
        for name in names:
            path(name)
        return Step("fall_back_on", tuple(names))

    def sync(local_path: str, remote_path: str) -> Step:
        path(local_path)
        return Step("sync", (local_path, remote_path))

    def run_step(command: str, trigger: Iterable[str] = ()) -> Step:
        return Step("run", (command, *trigger))

    def port_forward(
        local_port: int, container_port: int | None = None, name: str | None = None, **_: Any
    ) -> PortForward:
        return PortForward(local_port, container_port or local_port, name)

    def k8s_resource(
        workload: str | None = None,
        *,
        new_name: str | None = None,
        objects: Iterable[str] = (),
        labels: Iterable[str] = (),
        resource_deps: Iterable[str] = (),
        port_forwards: Iterable[PortForward | str | int] = (),
        **_: Any,
    ) -> None:
        run.k8s_calls.append(
            K8sResourceCall(
                workload,
                new_name,
                list(objects),
                list(labels),
                list(resource_deps),
                [_port_forward(value) for value in port_forwards],
            )
        )

    def local_resource(name: str, cmd: str = "", **kwargs: Any) -> None:
        if name in run.local_resources:
            raise AssemblyError(f"local_resource {name} is declared twice")
        for dep in kwargs.get("deps", []):
            path(dep)
        run.local_resources[name] = {"cmd": cmd, **kwargs}

    def helm_resource(name: str, chart_ref: str, **kwargs: Any) -> None:
        if name in run.helm_resources:
            raise AssemblyError(f"helm_resource {name} is declared twice")
        for dep in kwargs.get("deps", []):
            path(dep)
        run.helm_resources[name] = {"chart": chart_ref, **kwargs}

    def allow_k8s_contexts(contexts: str | list[str]) -> None:
        run.allowed_contexts.extend([contexts] if isinstance(contexts, str) else contexts)

    def fail(message: str) -> None:
        raise AssemblyError(message)

    def ignore(*_: Any, **__: Any) -> None:
        return None

    stubs: dict[str, Callable[..., Any] | str] = {
        "load": load_,
        "read_file": read_file,
        "decode_yaml_stream": decode_yaml_stream,
        "encode_yaml_stream": encode_yaml_stream,
        "helm": helm,
        "k8s_yaml": k8s_yaml,
        "docker_build": docker_build,
        "fall_back_on": fall_back_on,
        "sync": sync,
        "run": run_step,
        "port_forward": port_forward,
        "link": lambda url, name="": {"url": url, "name": name},
        "k8s_resource": k8s_resource,
        "local_resource": local_resource,
        "allow_k8s_contexts": allow_k8s_contexts,
        "update_settings": ignore,
        "fail": fail,
        "TRIGGER_MODE_AUTO": "TRIGGER_MODE_AUTO",
        "TRIGGER_MODE_MANUAL": "TRIGGER_MODE_MANUAL",
    }
    namespace.update(stubs)
    return namespace


def _port_forward(value: PortForward | str | int) -> PortForward:
    if isinstance(value, PortForward):
        return value
    if isinstance(value, int):
        return PortForward(value, value)
    local, _, remote = value.partition(":")
    return PortForward(int(local), int(remote or local))


def fragment_keys(obj: Manifest) -> list[str]:
    """The fragments Tilt knows an object by: name, name:kind, name:kind:namespace."""
    name, kind = obj["metadata"]["name"], obj["kind"].lower()
    namespace = obj["metadata"].get("namespace") or "default"
    return [name, f"{name}:{kind}", f"{name}:{kind}:{namespace}"]


def _has_pod_template(obj: Manifest) -> bool:
    spec = obj.get("spec", {})
    return obj["kind"] in WORKLOAD_KINDS and ("template" in spec or "containers" in spec)


def _selects(service: Manifest, workload: Manifest) -> bool:
    if service["kind"] != "Service":
        return False
    if service["metadata"].get("namespace") != workload["metadata"].get("namespace"):
        return False
    pod_labels = workload["spec"]["template"]["metadata"].get("labels", {})
    selector: Mapping[str, str] = service["spec"].get("selector", {})
    return all(pod_labels.get(key) == value for key, value in selector.items())


def assemble(run: TiltRun) -> None:
    """Group run.objects into resources as Tilt's resource assembly does."""
    unresourced = [obj for obj in run.objects if not _has_pod_template(obj)]
    workloads = [obj for obj in run.objects if _has_pod_template(obj)]
    names = [obj["metadata"]["name"] for obj in workloads]
    for workload in workloads:
        name = workload["metadata"]["name"]
        if names.count(name) > 1:
            name = f"{name}:{workload['kind'].lower()}"
        resource = Resource(name, [workload])
        for obj in list(unresourced):
            if _selects(obj, workload):
                resource.objects.append(obj)
                unresourced.remove(obj)
        run.resources[name] = resource

    every = [obj for resource in run.resources.values() for obj in resource.objects]
    every += unresourced
    by_fragment: dict[str, list[Manifest]] = {}
    for obj in every:
        for key in fragment_keys(obj):
            by_fragment.setdefault(key, []).append(obj)

    for call in run.k8s_calls:
        if call.workload is None:
            if not call.new_name:
                raise AssemblyError("k8s_resource without a workload needs new_name")
            if call.new_name in run.resources:
                raise AssemblyError(f"k8s_resource {call.new_name!r} already exists")
            run.resources[call.new_name] = Resource(call.new_name)
            resource = run.resources[call.new_name]
        elif call.workload in run.resources:
            resource = run.resources.pop(call.workload)
            resource.name = call.new_name or call.workload
            run.resources[resource.name] = resource
        else:
            raise AssemblyError(
                f"k8s_resource specified unknown resource {call.workload!r}. "
                f"known resources: {', '.join(sorted(run.resources))}"
            )
        resource.labels, resource.resource_deps = call.labels, call.resource_deps
        resource.port_forwards = call.port_forwards
        for fragment in call.objects:
            found = by_fragment.get(fragment.lower(), [])
            if len(found) != 1:
                raise AssemblyError(
                    f"No object identified by the fragment {fragment!r} could be found"
                    if not found
                    else f"{fragment!r} is not a unique fragment"
                )
            if not any(obj is found[0] for obj in unresourced):
                raise AssemblyError(
                    f"No object identified by the fragment {fragment!r} could be found in "
                    "remaining YAML (it already belongs to a resource)"
                )
            unresourced = [obj for obj in unresourced if obj is not found[0]]
            resource.objects.append(found[0])
    if unresourced:
        run.resources["uncategorized"] = Resource("uncategorized", unresourced)


# Python that Go's Starlark (Tilt's dialect) does not have.
_NOT_STARLARK: dict[type[ast.AST], str] = {
    ast.Import: "import",
    ast.ImportFrom: "import",
    ast.ClassDef: "class",
    ast.Try: "try",
    ast.While: "while",
    ast.With: "with",
    ast.Raise: "raise",
    ast.Assert: "assert",
    ast.Delete: "del",
    ast.Global: "global",
    ast.Nonlocal: "nonlocal",
    ast.JoinedStr: "f-string",
    ast.Set: "set literal",
    ast.SetComp: "set comprehension",
    ast.GeneratorExp: "generator expression",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Await: "await",
    ast.AsyncFunctionDef: "async def",
    ast.NamedExpr: "walrus",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.Pow: "**",
}


def starlark_problems(source: str) -> list[str]:
    """Constructs in `source` that a Starlark interpreter would refuse."""
    tree = ast.parse(source)
    problems = []
    for node in ast.walk(tree):
        for node_type, what in _NOT_STARLARK.items():
            if isinstance(node, node_type):
                problems.append(f"line {getattr(node, 'lineno', '?')}: {what}")
        if isinstance(node, ast.Compare) and len(node.ops) > 1:
            problems.append(f"line {node.lineno}: chained comparison")
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            problems.append(f"line {node.lineno}: decorator")
    # Go's Starlark refuses if/for at the top level unless an option allows it.
    problems += [
        f"line {statement.lineno}: top-level {type(statement).__name__}"
        for statement in tree.body
        if isinstance(statement, ast.If | ast.For)
    ]
    return problems
