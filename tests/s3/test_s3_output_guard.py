"""tasks.output_guard on a real S3-compatible server: an S3 prefix is the pipeline's output only
when it is empty or holds the pipeline's marker or report."""

from __future__ import annotations

import json

import pytest

from tasks.report import run_report
from tasks.output_guard import OUTPUT_MARKER, OutputRefusedError, check_output_location, claim_output
from tasks.stores import open_storage


def test_s3_prefix_empty_marked_or_reported_is_the_pipelines_and_others_are_refused(s3_env, bucket):
    fresh = open_storage(f"s3://{bucket}/runs/new")
    check_output_location(fresh)
    claim_output(fresh)
    assert fresh.exists(OUTPUT_MARKER)
    fresh.write("results/c--s.png", b"png")
    check_output_location(fresh)

    site = open_storage(f"s3://{bucket}/site")
    site.write("index.html", b"<html>mine</html>")
    with pytest.raises(OutputRefusedError) as info:
        check_output_location(site)
    assert str(info.value).startswith(f"output s3://{bucket}/site is not empty (index.html) ")
    with pytest.raises(OutputRefusedError, match="holds index.html that this pipeline would write over"):
        check_output_location(site, allow_non_empty=True)  # consent never covers replacing a gallery
    notes = open_storage(f"s3://{bucket}/notes")
    notes.write("readme.txt", b"mine")
    check_output_location(notes, allow_non_empty=True)

    reported = open_storage(f"s3://{bucket}/old-run")
    reported.write("run.json", json.dumps(run_report("old", [], {})).encode())
    reported.write("index.html", b"<html>gallery</html>")
    check_output_location(reported)  # an output made before the marker existed
