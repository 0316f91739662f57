"""Hostile files: every mutant of the golden files is refused with a CodecError or decodes.

The mutants and the harness are those of ``benchmarks/fuzz.py`` (its doc lists the families):
here every exhaustive mutant of the first two golden files (a sample of the others') (each field at 0, 1, ±1, its bound, bound
+ 1, its type's maximum or a NaN/Inf float with every CRC recomputed; cuts at every chunk
boundary; re-framed payloads) and a seeded sample of random ones, each decoded in-process
under the fuzzer's lowered resource limits.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import fields

import numpy as np
import pytest

from benchmarks import fuzz
from codec import limits
from codec.bitstream import NirvReader

RANDOM_PER_FAMILY = 60


@pytest.fixture(scope="module")
def bases() -> list[fuzz.Base]:
    return [fuzz.load(path) for path in fuzz.BASES]


def _run(mutants, tmp_path) -> list[tuple[fuzz.Mutant, fuzz.Result]]:
    with fuzz.fuzz_limits():
        return [(m, fuzz.run_mutant(m.data, tmp_path / "mutant.nirv")) for m in mutants]


def _no_bugs(results) -> None:
    bugs = [f"{m.family}: {m.what}\n{r.detail}" for m, r in results if r.outcome == "bug"]
    assert not bugs, f"{len(bugs)} bugs, the first:\n{bugs[0]}"


def test_the_fuzzer_models_the_golden_files_exactly(bases):
    """Rebuilding a file from its parts, or recomputing its CRCs, gives it back byte for byte,
    and every header field sits where the fuzzer thinks it does."""
    for base in bases:
        assert fuzz.assemble(base.version, base.head, base.payloads, base.keys, base.frames) == base.data
        assert fuzz.resign(bytearray(base.data), base) == base.data
        with NirvReader(fuzz.REPO / "tests" / "data" / base.name) as reader:
            header = reader.header
        values = {f.name: getattr(header, f.name) for f in fields(header)}
        values |= {f.name: getattr(header.network, f.name) for f in fields(header.network)}
        for field in base.fields:
            section, name = field.name.split(" ", 1)
            if section == "header" and isinstance(values.get(name), (int, float)):
                assert fuzz.read(base.data, field) == pytest.approx(values[name]), field.name


def test_fuzz_limits_are_lowered_only_inside_the_block():
    before = dict(limits._LIMITS)
    with fuzz.fuzz_limits():
        assert limits._LIMITS["group_work"] == fuzz.FUZZ_LIMITS["group_work"] < before["group_work"]
    assert limits._LIMITS == before


@pytest.mark.parametrize("index", [0, 1], ids=["v1-siren", "v2-grid"])
def test_every_exhaustive_mutant_is_refused_or_decoded(bases, tmp_path, index):
    results = _run(list(fuzz.exhaustive(bases[index])), tmp_path)
    _no_bugs(results)
    outcomes = Counter(r.outcome for _, r in results)
    assert len(results) > 1000 and all(outcomes[o] for o in ("open", "group", "decoded")), outcomes
    for m, r in results:
        if m.family != "truncate" and not m.what.startswith("prelude header_size"):
            assert "CRC32" not in r.detail, (m.what, r.detail)  # recomputed CRCs hold
        if m.family == "field" and m.what.startswith("group"):
            assert r.outcome != "open", (m.what, r.detail)  # payload fields reach the parser


def test_random_mutants_of_every_family_are_refused_or_decoded(bases, tmp_path):
    rng = np.random.default_rng(10)
    mutants = [family.draw(rng, bases[k % 2]) for family in fuzz.FAMILIES.values()
               for k in range(RANDOM_PER_FAMILY)]
    results = _run(mutants, tmp_path)
    _no_bugs(results)
    assert Counter(m.family for m, _ in results) == {f: RANDOM_PER_FAMILY for f in fuzz.FAMILIES}


@pytest.mark.parametrize("index", [2, 3, 4, 6, 7],
                         ids=["v2-context", "v3-compact", "v3-subpel", "v5-cut", "v6-motion"])
def test_mutants_of_context_coded_groups_are_refused_or_decoded(bases, tmp_path, index):
    """The golden files with context-coded levels (fixed and compact tensor tables, motion,
    context-coded motion, groups ended at a cut; v4's cut file, whose payloads are v3's, is left to the benchmark):
    their payload fields at every bound, and random mutants (the benchmark runs all of their
    exhaustive ones)."""
    context = bases[index]
    rng = np.random.default_rng(11)
    fields = [m for m in fuzz.exhaustive(context) if m.family == "field" and m.what.startswith("group")]
    mutants = [fields[i] for i in rng.choice(len(fields), 100, replace=False)]
    mutants += [fuzz.draw(rng, [context]) for _ in range(100)]
    results = _run(mutants, tmp_path)
    _no_bugs(results)
    outcomes = Counter(r.outcome for _, r in results)
    assert outcomes["group"] and outcomes["decoded"], outcomes


def test_a_bug_is_reported_with_its_traceback(tmp_path, monkeypatch):
    """The harness itself: an exception that is no CodecError counts as a bug."""

    def broken(*args, **kwargs):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(fuzz, "decoded_groups", broken)
    result = fuzz.run_mutant(fuzz.BASES[1].read_bytes(), tmp_path / "m.nirv")
    assert result.outcome == "bug" and "ZeroDivisionError: planted" in result.detail
    assert not (tmp_path / "m.nirv").exists()


def test_benchmark_writes_counts(tmp_path):
    assert fuzz.main(["-n", "40", "--seed", "1", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "fuzz.json").read_text())
    assert r["n"] == 40 and sum(r["counts"].values()) == 40 and r["counts"]["bug"] == 0
    assert "| **all** |" in (tmp_path / "fuzz.md").read_text()
