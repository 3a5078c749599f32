"""What a prompt in another language costs: the translation model's load,
the first translation, a cached one, and the check an English prompt
pays instead.

Builds a Marian model of the opus-mt models' size (d_model 512, 6 + 6
layers, 8 heads, feed-forward 2048, a vocabulary of ``--vocab`` pieces,
random weights; tests/translation_fixtures.py) in ``save_pretrained``
layout and times the plugin's own path (``PromptTranslation``), in one
process:

* load: the model and its tokenizer read from the folder (as a hub
  snapshot is);
* first translation of a prompt (greedy, as the plugin runs it). Random
  weights never stop on their own, so this runs to the plugin's cap
  (twice the prompt's tokens + 16): the worst case. A real model stops
  after about as many tokens as the prompt has; ``per token`` says what
  each costs;
* a user's first prompt: a new process imports, loads and translates
  through the plugin's call, stopped at a real translation's length;
* the same prompt again, through a new ``PromptTranslation`` (a new
  command): the translation cache, no model;
* an English prompt: the script check only.

CPU time beside wall time: on a machine shared with other work, the CPU
seconds say what the work itself costs (torch's threads add theirs up).

    python benchmarks/translation.py [--runs 5] [--vocab 60000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from beets_audiofeatures.clap.translation import (
    PromptTranslation,
    TranslationCache,
    needs_translation,
)
from tests.translation_fixtures import make_translation_model

PROMPTS = [
    "атмосферный дум-метал",
    "спокойное фортепиано ночью",
    "грустная скрипка под дождём",
    "тяжёлые гитары и быстрые барабаны",
    "джаз с контрабасом и щётками",
]
#: About how many tokens opus-mt makes of a prompt of a few words.
REAL_TOKENS = 8


def median_ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.1f} ms"


FRESH = """
import functools, sys, time
sys.path.insert(0, sys.argv[3])
from beets_audiofeatures.clap.translation import PromptTranslation
start = time.perf_counter()
translator = PromptTranslation(sys.argv[1]).translator(sys.argv[2])
loaded = time.perf_counter()
model = translator.model
# The plugin's own call, stopped at a real translation's length.
model.generate = functools.partial(
    model.generate, min_new_tokens=int(sys.argv[4]),
    max_new_tokens=int(sys.argv[4]),
)
translator.translate([sys.argv[2]])
print(loaded - start, time.perf_counter() - loaded)
"""


def fresh_first_prompt(folder: Path, prompt: str) -> tuple[float, float]:
    """A user's first translated prompt: a new process loads the model
    and translates, stopped at a real translation's length (random
    weights never stop on their own); seconds of load and translation."""
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run(
        [sys.executable, "-c", FRESH, str(folder), prompt, root,
         str(REAL_TOKENS)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=60_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder = make_translation_model(
            root / "opus-mt-base", base=True, vocab_size=args.vocab
        )
        weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
        print(
            f"model: {weights / 2**20:.0f} MiB of weights, vocab {args.vocab}"
        )
        loads, firsts, cached, tokens = [], [], [], []
        load_cpu, first_cpu = [], []
        for run in range(args.runs):
            prompt = PROMPTS[run % len(PROMPTS)]
            cache = TranslationCache(root / f"cache{run}")
            translation = PromptTranslation(str(folder))
            start, cpu = time.perf_counter(), time.process_time()
            translator = translation.translator(prompt)
            loads.append(time.perf_counter() - start)
            load_cpu.append(time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()
            translation.english(cache, [prompt])
            firsts.append(time.perf_counter() - start)
            first_cpu.append(time.process_time() - cpu)
            batch = translator.tokenizer([prompt])["input_ids"][0]
            tokens.append(min(512, len(batch) * 2 + 16) - 1)
            again = PromptTranslation(str(folder))
            start = time.perf_counter()
            again.english(cache, [prompt])
            cached.append(time.perf_counter() - start)
            assert not again.loaded
        start = time.perf_counter()
        for _ in range(1000):
            needs_translation("atmospheric doom metal with female vocals")
        english = (time.perf_counter() - start) / 1000
        per_token = statistics.median(
            f / t for f, t in zip(firsts, tokens, strict=True)
        )
        print(
            f"load (model + tokenizer):      {median_ms(loads)} "
            f"({median_ms(load_cpu)} of CPU)"
        )
        print(
            f"first translation (worst case): {median_ms(firsts)} "
            f"({statistics.median(tokens):.0f} tokens generated, "
            f"{per_token * 1000:.1f} ms per token; "
            f"{statistics.median(first_cpu) / statistics.median(tokens) * 1000:.1f}"
            " ms of CPU per token)"
        )
        # The test vocabulary spells Russian letter by letter; opus-mt's
        # splits a short prompt into about eight pieces.
        print(
            f"  at a real translation's length (~{REAL_TOKENS} tokens): "
            f"~{per_token * REAL_TOKENS * 1000:.0f} ms"
        )
        fresh = [fresh_first_prompt(folder, p) for p in PROMPTS[: args.runs]]
        print(
            f"  measured, in a new process capped at {REAL_TOKENS} tokens: "
            f"load {median_ms([f[0] for f in fresh])}, "
            f"translation {median_ms([f[1] for f in fresh])}"
        )
        print(f"cached translation:            {median_ms(cached)}")
        print(f"English prompt (script check): {english * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
