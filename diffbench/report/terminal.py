"""Answers (the JSON answer objects of estimate and recommend, docs/projection.md) as one table a
person reads in a terminal: what all rows share said once above it, one row per setting, the
reasons a row has no time below it. It renders the objects; it computes nothing of its own."""

from __future__ import annotations

from typing import Any

from ..errors import one_line

# Settings a row names only where they differ from these (a plain setting reads "plain").
ORDINARY = {"offload": "none", "quantize": "none", "batch_size": 1, "vae_tiling": False, "vae_slicing": False,
            "compile": False, "attention": "default", "cache": "none", "lora": None, "vram_limit": None,
            "sampler": "default", "task": "text-to-image"}
SHOWN_FIRST = ("resolution", "dtype", "runtime_dtype", "guidance_scale")


def _text(key: str, value: Any) -> str:
    if key == "guidance_scale" and isinstance(value, (int, float)):
        return f"guidance {value:g}"
    if key in ("resolution", "dtype", "runtime_dtype"):
        return str(value)
    return f"{key}={value}"


def _ordinary(key: str, value: Any) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return True
    return key in ORDINARY and str(value) in (str(ORDINARY[key]), "none", "None", "False", "-")


def _shared(answers: list[dict[str, Any]]) -> dict[str, Any]:
    keys = set.intersection(*(set(a["settings"]) for a in answers))
    return {k: answers[0]["settings"][k] for k in sorted(keys)
            if all(str(a["settings"][k]) == str(answers[0]["settings"][k]) for a in answers)}


def _seconds(answer: dict[str, Any]) -> tuple[str, str]:
    if answer.get("seconds") is None:
        return "-", ""
    interval = answer.get("interval") or {}
    low, high = interval.get("low"), interval.get("high")
    return f"{answer['seconds']:.2f}", (f"{low:.2f}-{high:.2f}" if low is not None and high is not None else "")


def _needs(answer: dict[str, Any]) -> str:
    need = answer.get("needs_gib")
    if not need:
        return "-"
    low, high = need.get("low"), need.get("high")
    if low is None:
        return "-"
    return f"{low:.1f}" if high is None or abs(high - low) < 0.05 else f"{low:.1f}-{high:.1f}"


def answer_table(answers: list[dict[str, Any]], title: str = "") -> list[str]:
    """Lines: a heading (`title`, then what every row shares), the table, then why rows have no time."""
    if not answers:
        return [title] if title else []
    shared = _shared(answers)
    cards = {a["card"] for a in answers}
    steps = {a["steps"] for a in answers}
    models = {a["model"] for a in answers}
    head = [*sorted(models)] if len(models) == 1 else []
    head += [_text(k, shared[k]) for k in SHOWN_FIRST if k in shared]
    head += [_text(k, v) for k, v in shared.items() if k not in SHOWN_FIRST and not _ordinary(k, v)]
    if len(cards) == 1:
        card = next(iter(cards))
        gib = answers[0].get("card_gib")
        head.append(f"{card}" + (f" ({gib:g} GiB)" if isinstance(gib, (int, float)) else ""))
    if len(steps) == 1:
        head.append(f"{next(iter(steps))} steps")
    lines = [title] if title else []
    lines.append(" · ".join(str(h) for h in head) + ":")
    rows = []
    footnotes: list[str] = []
    refused = False
    # offloaded weights live in host RAM (FLUX in bf16: 31 GiB): said where any row offloads
    host = any(answer.get("host_ram_gib") for answer in answers)
    for answer in answers:
        differs = [_text(k, v) for k, v in answer["settings"].items()
                   if k not in shared and not _ordinary(k, v)]
        setting = " · ".join(([answer["model"]] if len(models) > 1 else []) + differs) or "plain"
        if len(cards) > 1:
            setting = f"{answer['card']}: {setting}"
        seconds, interval = _seconds(answer)
        if answer.get("seconds") is None and answer.get("fits") == "no":
            refused = True
        elif answer.get("seconds") is None:
            why = answer.get("unknown") or "no time"
            footnotes.append(f"[{len(footnotes) + 1}] {one_line(setting)}: {one_line(str(why))}")
            seconds = f"-[{len(footnotes)}]"
        ram = [f"{answer['host_ram_gib']:.1f}" if answer.get("host_ram_gib") else "-"] if host else []
        rows.append((one_line(setting), seconds, interval, str(answer.get("fits") or "-"), _needs(answer), *ram,
                     str(answer.get("bound") or "-"), str(answer.get("source") or "-")))
    header = ("setting", "s/image", "95% interval", "fits", "needs GiB", *(["host RAM GiB"] if host else []), "bound",
              "source")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    widths[0] = min(widths[0], 60)
    right = {1, 2, 4, 5} if host else {1, 2, 4}
    for row in [header, *rows]:
        cells = [(cell if len(cell) <= widths[i] else cell[:widths[i] - 1] + "…") for i, cell in enumerate(row)]
        lines.append("  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                               for i, cell in enumerate(cells)).rstrip())
    if refused:
        fitting = any(a.get("fits") in ("yes", "borderline") for a in answers)
        hints = [str(a.get("unknown") or "").partition("; ")[2] for a in answers if a.get("fits") == "no"]
        footnotes.append("fits no, no time: the setting needs more memory than the card holds (needs GiB: the least "
                         "and the most it may take); " + ("the rows that fit are the settings to use" if fitting else
                                                          next((h for h in hints if h), "none of these fits")))
    return lines + footnotes


# What a reason for leaving a setting out is about, by the words recommend's reasons use.
REASON_KINDS = (("in host ram, more than", "hold more host RAM than allowed"),
                ("more than", "need more memory than allowed"), ("> ", "need more memory than allowed"),
                ("as fast in no more", "dominated (another is as fast in no more memory)"),
                ("dominated by", "dominated (another is as fast in no more memory)"),
                ("cannot be projected", "cannot be projected onto the card"),
                ("flagged noisy", "measured while other work competed"),
                ("error", "did not run cleanly"), ("oom", "did not run cleanly"), ("crashed", "did not run cleanly"),
                ("timeout", "did not run cleanly"), ("not_applicable", "did not apply"),
                ("seconds", "slower than allowed"), ("quality", "below the quality asked"))


def reason_kind(why: str) -> str:
    """The kind of a reason recommend gave for leaving a setting out, to count them by."""
    text = why.lower()
    return next((kind for word, kind in REASON_KINDS if word in text), "other reasons")
