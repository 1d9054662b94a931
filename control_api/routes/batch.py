from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from control_api import jobs, uploads
from control_api.db import session_scope
from control_api.deps import Caller, CtxDep, Operator, SessionDep, Viewer
from control_api.models import BatchJob
from control_api.routes import errors
from control_api.schemas import BatchFileOut, BatchJobCreated, BatchJobOut, BatchJobSummary
from control_api.security import role_allows

router = APIRouter(prefix="/api/inference", tags=["batch"])


@router.post("/batch", response_model=BatchJobCreated, status_code=202, responses=errors(413, 415))
def submit(
    request: Request,
    ctx: CtxDep,
    caller: Operator,
    files: Annotated[list[UploadFile] | None, File(description="WAV, FLAC or Ogg audio files")] = None,
    references: Annotated[
        list[str] | None, Form(description="paths of server-side files under the configured reference root")
    ] = None,
) -> BatchJobCreated:
    """Queue a batch diarization job of uploaded files and/or server-side references.

    Uploads are checked here (size, magic bytes, decoding, duration): one bad upload rejects the whole
    request and nothing of it is kept. References are checked by the worker: a bad one fails only itself.
    """
    files, references = files or [], [r for r in (references or []) if r]
    settings = ctx.settings
    count = len(files) + len(references)
    if count == 0:
        raise HTTPException(status_code=422, detail="send at least one file or reference")
    if count > settings.max_files_per_job:
        raise HTTPException(status_code=413, detail=f"at most {settings.max_files_per_job} files per job")

    staging = uploads.new_staging_dir(settings.storage_dir)
    job_id = str(uuid.uuid4())
    job_dir = settings.storage_dir / "jobs" / job_id
    try:
        staged = [
            uploads.stage_upload(
                upload.file,
                upload.filename,
                staging,
                index,
                max_bytes=settings.max_upload_bytes,
                max_seconds=settings.max_audio_seconds,
                validate=ctx.validate_audio,
            )
            for index, upload in enumerate(files)
        ]
        referenced = [uploads.resolve_reference(ref, settings.reference_root) for ref in references]
        stored = uploads.commit_staged(staged, job_dir)
        new_files = [jobs.NewFile(s.filename, p.as_uri()) for s, p in zip(staged, stored, strict=True)]
        new_files += [
            jobs.NewFile(uploads.clean_filename(p.name, f"ref{i}"), p.as_uri()) for i, p in enumerate(referenced)
        ]
        with session_scope(ctx.sessions) as session:
            jobs.create_job(session, caller.username, new_files, job_id=job_id)
    except uploads.UploadRejected as exc:
        uploads.discard(job_dir)
        raise HTTPException(status_code=exc.status_code, detail=exc.message) from exc
    except BaseException:
        uploads.discard(job_dir)  # e.g. the database refused the job: its files must not linger
        raise
    finally:
        uploads.discard(staging)
    request.state.audit_target = f"job={job_id}"
    return BatchJobCreated(job_id=job_id, state="queued", files=count)


def _visible_job(session: Session, job_id: str, caller: Caller) -> BatchJob:
    """The job if it is the caller's (or the caller is an admin); others' jobs are a 404, not a 403,
    so job ids cannot be probed."""
    job = jobs.load_job(session, job_id)
    if job is None or (job.created_by != caller.username and not role_allows(caller.role, "admin")):
        raise HTTPException(status_code=404, detail=f"no batch job {job_id}")
    return job


@router.get("/batch", response_model=list[BatchJobSummary], responses=errors())
def list_jobs(
    session: SessionDep,
    caller: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[BatchJobSummary]:
    """The caller's batch jobs, newest first (an admin sees everyone's)."""
    owner = None if role_allows(caller.role, "admin") else caller.username
    return [
        BatchJobSummary(
            id=job.id,
            state=jobs.derive_job_state(statuses),  # type: ignore[arg-type]
            progress=jobs.progress(statuses),
            created_by=job.created_by,
            created_at=job.created_at,
            files=len(statuses),
            failed=statuses.count(jobs.FAILED),
        )
        for job, statuses in jobs.recent_jobs(session, created_by=owner, limit=limit, offset=offset)
    ]


@router.get("/batch/{job_id}", response_model=BatchJobOut, responses=errors(404))
def status(job_id: str, session: SessionDep, caller: Viewer) -> BatchJobOut:
    """State, progress and per-file results (segments and RTTM) or errors of a batch job."""
    job = _visible_job(session, job_id, caller)
    statuses = [f.status for f in job.files]
    return BatchJobOut(
        id=job.id,
        state=jobs.derive_job_state(statuses),  # type: ignore[arg-type]
        progress=jobs.progress(statuses),
        created_by=job.created_by,
        created_at=job.created_at,
        files=[
            BatchFileOut(
                position=f.position,
                filename=f.filename,
                status=f.status,  # type: ignore[arg-type]
                attempts=f.attempts,
                error=f.error,
                segments=f.segments,  # type: ignore[arg-type]
                rttm=f.rttm,
                model=f.model,  # type: ignore[arg-type]
                started_at=f.started_at,
                finished_at=f.finished_at,
            )
            for f in job.files
        ],
    )


@router.get(
    "/batch/{job_id}/rttm",
    # Not response_class=PlainTextResponse: that would document the JSON error bodies as text/plain too.
    response_class=Response,
    responses={
        **errors(404),
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "one RTTM for the job"},
    },
)
def rttm(job_id: str, session: SessionDep, caller: Viewer) -> PlainTextResponse:
    """The RTTM of every finished file of the job, in file order (file ids are the file names' stems)."""
    job = _visible_job(session, job_id, caller)
    return PlainTextResponse(jobs.combined_rttm(job.files))
