"""The service Dockerfiles as data: stages and their instructions, for checks hadolint
does not make (tests/deploy/test_dockerfiles.py) and for the Tiltfile's (test_tiltfile.py).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ordermesh.paths import REPO_ROOT

SERVICES = ("gateway", "orders", "notify")


def dockerfile_path(service: str) -> Path:
    return REPO_ROOT / "services" / service / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY ...
    text: str  # the arguments, continuation lines joined
    line: int

    def flags(self) -> dict[str, str]:
        """--name=value options (COPY --from, RUN --mount ...)."""
        return dict(re.findall(r"--([a-z-]+)=(\S+)", self.text))

    def words(self) -> list[str]:
        """The arguments without the --options: shell words, or the JSON array."""
        rest = re.sub(r"^(?:--[a-z-]+=\S+\s+)*", "", self.text)
        if rest.startswith("["):
            parsed: list[str] = json.loads(rest)
            return parsed
        return shlex.split(rest)

    @property
    def exec_form(self) -> bool:
        try:
            value = json.loads(self.text)
        except json.JSONDecodeError:
            return False
        return isinstance(value, list) and all(isinstance(item, str) for item in value)


@dataclass
class Stage:
    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """ENV key=value pairs of this stage (in order; later wins)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in instruction.words():
                key, _, value = word.partition("=")
                values[key] = value
        return values


@dataclass
class Dockerfile:
    path: Path
    text: str
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        """The stage `docker build` produces without --target."""
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"{self.path}: no stage {name!r}")

    def lineage(self, stage: Stage) -> list[Stage]:
        """The stage and the stages of this file it is built FROM, nearest first."""
        chain = [stage]
        while chain[-1].base in {s.name for s in self.stages}:
            chain.append(self.stage(chain[-1].base))
        return chain


def instructions(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            keyword, _, rest = " ".join(part for part in pending if part).partition(" ")
            found.append(Instruction(keyword.upper(), rest.strip(), start))
            pending = []
    return found


def parse(text: str, path: Path = Path("Dockerfile")) -> Dockerfile:
    stages: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.words()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, instruction.line))
        elif stages:
            stages[-1].instructions.append(instruction)
    return Dockerfile(path, text, stages)


def load(service: str) -> Dockerfile:
    path = dockerfile_path(service)
    return parse(path.read_text(), path)
