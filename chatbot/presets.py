"""System-instruction presets, one Markdown file each in prompts/.

A file's stem is the preset's id (stored with the user's choice); its first line, `# Title`,
is what the picker shows; the rest is the instruction text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memory import SystemInstruction

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
DEFAULT_PRESET = "standard"


@dataclass(frozen=True)
class Preset:
    id: str
    title: str
    text: str

    def instruction(self) -> SystemInstruction:
        return SystemInstruction(text=self.text, preset=self.id)


def _parse(path: Path) -> Preset:
    raw = path.read_text(encoding="utf-8").strip()
    first, _, rest = raw.partition("\n")
    if not first.startswith("# ") or not rest.strip():
        raise ValueError(f"{path} must start with a '# Title' line followed by the instruction.")
    return Preset(id=path.stem, title=first[2:].strip(), text=rest.strip())


def load_presets(directory: Path = PROMPTS_DIR) -> dict[str, Preset]:
    """Presets by id, the default first, then in file-name order."""
    presets = {path.stem: _parse(path) for path in sorted(directory.glob("*.md"))}
    if DEFAULT_PRESET not in presets:
        raise ValueError(f"{directory} must hold the default preset {DEFAULT_PRESET}.md")
    return {DEFAULT_PRESET: presets.pop(DEFAULT_PRESET), **presets}
