"""The analysis pool survives a worker process that dies: the job it held runs
once more in a fresh pool, a job whose process dies twice fails with a clear
error (the API's 500 ``analysis_crashed``), and the pool keeps serving."""

from __future__ import annotations

import math
import os

import pytest

from app.analysis_pool import AnalysisPool
from app.errors import AnalysisCrashed


def test_a_job_that_kills_its_process_twice_fails_clearly_and_the_pool_goes_on():
    pool = AnalysisPool(1)
    try:
        with pytest.raises(AnalysisCrashed, match="died twice"):
            pool.call(os._exit, 3).result(timeout=300)  # as a process killed for memory would
        assert pool.call(math.sqrt, 16.0).result(timeout=300) == 4.0
    finally:
        pool.shutdown()


def test_an_ordinary_error_is_the_jobs_own():
    pool = AnalysisPool(1)
    try:
        with pytest.raises(ValueError, match="math domain error"):
            pool.call(math.sqrt, -1.0).result(timeout=300)
    finally:
        pool.shutdown()
