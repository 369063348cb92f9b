"""Phase 1 jobs are shown by a readable name (base, where, when), never by their hex id."""

from cognitivetwin_core.phase1.job_names import job_name
from cognitivetwin_core.phase1.jobs import JobRecord


def test_a_job_is_named_by_its_base_where_it_trains_and_when():
    record = JobRecord(
        job_id="local-6f2af0bfc6d9", backend="local", base_model="smollm2-135m", created_at="2026-12-07 02:45:00"
    )
    name = job_name(record)
    assert name.startswith("SmolLM2 135M · this computer · ") and "6f2af0" not in name
    assert name.split(" · ")[-1][-5:].count(":") == 1, "the start time, as hours and minutes"
    together = JobRecord(job_id="ft-123", backend="together", base_model="/models/my-base", suffix="my-twin")
    assert job_name(together) == "my-twin · my-base · Together AI"
