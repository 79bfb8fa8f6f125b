"""The sidebar's system instruction: a preset, or a custom text saved as soon as the box is
left, and the instruction in force shown as text."""

from __future__ import annotations

import streamlit as st

from chatbot.identity import Identity
from chatbot.presets import Preset
from chatbot.services import Services
from memory import ChatMemory, SystemInstruction
from ui import state
from ui.feedback import act, show_error
from ui.records import Place

CUSTOM = "__custom__"


def preset_label(presets: dict[str, Preset], option: str) -> str:
    return "Custom…" if option == CUSTOM else presets[option].title


def choose_preset(
    memory: ChatMemory, user_id: str, key: str, presets: dict[str, Preset], editing_key: str
) -> None:
    choice = str(state.widget_value(key))
    if choice == CUSTOM:
        state.show_value(editing_key, True)  # the box opens holding the instruction in force
        return
    state.show_value(editing_key, False)
    preset = presets[choice]
    if act(
        Place.INSTRUCTION,
        "Changing the instruction",
        lambda: memory.set_system_instruction(user_id, preset.text, preset=preset.id),
    ):
        st.toast(f"Instruction: {preset.title}")


def save_custom_instruction(memory: ChatMemory, user_id: str, key: str) -> None:
    text = str(state.widget_value(key) or "")
    if not text.strip():
        state.report(Place.INSTRUCTION, "A custom instruction cannot be empty.")
        return
    if act(
        Place.INSTRUCTION,
        "Saving the instruction",
        lambda: memory.set_system_instruction(user_id, text),
    ):
        st.toast("Custom instruction saved")


def instruction_section(services: Services, identity: Identity, current: SystemInstruction) -> None:
    bar = st.sidebar
    bar.subheader("System instruction")
    show_error(Place.INSTRUCTION)
    memory, presets, user = services.memory, services.presets, identity.user_id
    preset_key = state.widget_key("preset", user)
    custom_key = state.widget_key("custom_instruction", user)
    editing_key = state.widget_key("editing_custom", user)
    in_force = current.preset if current.preset in presets else CUSTOM
    state.show_value(preset_key, CUSTOM if state.widget_value(editing_key) else in_force)
    bar.selectbox(
        "Preset",
        [*presets, CUSTOM],
        key=preset_key,
        format_func=lambda option: preset_label(presets, option),
        on_change=choose_preset,
        args=(memory, user, preset_key, presets, editing_key),
    )
    if state.widget_value(preset_key) == CUSTOM:
        state.show_value(custom_key, current.text)
        bar.text_area(
            "Custom instruction",
            key=custom_key,
            max_chars=max(services.max_prompt_chars, len(current.text)),
            on_change=save_custom_instruction,
            args=(memory, user, custom_key),
            help="Saved as soon as you leave the box (or press Ctrl+Enter).",
        )
    bar.caption("In force now:")
    bar.text(current.text)
