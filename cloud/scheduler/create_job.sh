#!/usr/bin/env bash
# The Cloud Scheduler job that launches the score Flex Template every day (an HTTP POST to Dataflow's
# flexTemplates:launch with the body of score_launch.json, rendered and checked by cloud/scheduler/render.py).
#
#   PROJECT=my-proj REGION=us-central1 BUCKET=my-bucket VERSION=0.1.0 MODEL_DIR=gs://my-bucket/models/2026-01-15 \
#       bash cloud/scheduler/create_job.sh            # dry run (the default): renders the body, prints the command
#   APPLY=1 PROJECT=... bash cloud/scheduler/create_job.sh   # runs gcloud
#   ACTION=update APPLY=1 ...                           # change an existing job (same flags)
#
# Run from the repository root. The schedule is in UTC on purpose: the pipeline names its output prefix after the
# UTC run date ({date}), so a UTC schedule keeps the prefix equal to the scheduled day.
# The caller's service account (SERVICE_ACCOUNT) mints the OAuth token Scheduler sends; it needs
# roles/dataflow.developer on the project and roles/iam.serviceAccountUser on the Dataflow worker account.
set -euo pipefail

: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}" "${VERSION:?set VERSION}"
: "${MODEL_DIR:?set MODEL_DIR to the gs:// directory of a blessed model}"
SERVICE_ACCOUNT=${SERVICE_ACCOUNT:-lstm-pipeline@${PROJECT}.iam.gserviceaccount.com}
JOB=${JOB:-lstm-score-daily}
SCHEDULE=${SCHEDULE:-0 6 * * *}
ACTION=${ACTION:-create}
PYTHON=${PYTHON:-.venv/bin/python}
BODY_FILE=${BODY_FILE:-$(mktemp -t score_launch.XXXXXX.json)}

"$PYTHON" -m cloud.scheduler.render --project "$PROJECT" --region "$REGION" --bucket "$BUCKET" \
    --version "$VERSION" --model_dir "$MODEL_DIR" --service_account "$SERVICE_ACCOUNT" --output "$BODY_FILE"

# The same URL as cloud/scheduler/render.py's LAUNCH_URL (tests/test_cloud_specs.py keeps the two equal).
URI="https://dataflow.googleapis.com/v1b3/projects/${PROJECT}/locations/${REGION}/flexTemplates:launch"

command=(
    gcloud scheduler jobs "$ACTION" http "$JOB"
    --project="$PROJECT"
    --location="$REGION"
    --schedule="$SCHEDULE"
    --time-zone=Etc/UTC
    --uri="$URI"
    --http-method=POST
    --headers=Content-Type=application/json
    --message-body-from-file="$BODY_FILE"
    --oauth-service-account-email="$SERVICE_ACCOUNT"
    --oauth-token-scope=https://www.googleapis.com/auth/cloud-platform
    # a launch answers in seconds (the job then runs on its own); retry a failed launch, not a long wait
    --attempt-deadline=180s
    --max-retry-attempts=3
)

if [[ "${APPLY:-0}" == 1 ]]; then
    "${command[@]}"
else
    echo "# body: $BODY_FILE (checked against LaunchFlexTemplateRequest); dry run, APPLY=1 runs:"
    printf '%q ' "${command[@]}"
    echo
fi
