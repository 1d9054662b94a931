"""The machine line every benchmark and suite report carries: DER and speed move with the CPU."""

from __future__ import annotations

import os

from pipelines.evaluation.machine import cpu, cpu_model, describe, int8_features
from pipelines.evaluation.suite.command import format_markdown

XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse avx2 avx512f avx512_vnni amx_int8
"""
EPYC = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse avx avx2 fma
"""


def test_the_cpu_and_its_int8_instruction_sets_are_named() -> None:
    assert cpu_model(XEON) == "Intel(R) Xeon(R) Platinum 8480+"
    assert int8_features(XEON) == ["amx_int8", "avx512_vnni", "avx2"]
    assert int8_features(EPYC) == ["avx2"]
    assert cpu(EPYC) == f"{os.cpu_count()} CPUs (AMD EPYC; int8: avx2)"
    assert cpu("") == f"{os.cpu_count()} CPUs (unknown CPU; int8: none found)"
    assert describe("load").startswith(cpu() + ", load ")


def test_every_suite_report_names_its_machine() -> None:
    head = format_markdown({}, [], {"suite": "dev"}, []).splitlines()[0]
    assert f"Machine: {cpu()}" in head
