"""An Airflow DAG that runs the weekly pipeline review: an example to copy, not part of the funnel_lab package.

The task runs ``funnel-lab run`` as a scheduler would from cron. Its exit code decides the task's state: 0 every
report done and every alert delivered; 1 a report failed or an alert channel could not deliver (every report is
still written, the failure is in ``manifest.json``); 2 bad params or unreadable input (nothing was run). Airflow
marks the task failed on any non-zero exit, so its own alerting (``email_on_failure``, callbacks) takes over.

Secrets stay out of the params file: the webhook URL and the SMTP URL are read from the environment
(``alerts.webhook.url: ${ALERT_WEBHOOK}``), here from Airflow Variables.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

PROJECT = "/srv/sales-analytics"  # the folder with params/, data/ and reports/
FUNNEL_LAB = f"{PROJECT}/.venv/bin/funnel-lab"

with DAG(
    dag_id="funnel_lab_weekly_review",
    schedule="0 6 * * MON",  # Mondays 06:00, after the CRM's nightly export
    start_date=datetime(2026, 1, 5),
    catchup=False,
    default_args={"retries": 0, "execution_timeout": timedelta(hours=2)},
    tags=["sales", "funnel_lab"],
) as dag:
    check = BashOperator(
        task_id="check_inputs",
        bash_command=f"cd {PROJECT} && {FUNNEL_LAB} check params/q3.yaml",
    )
    run = BashOperator(
        task_id="run_reports",
        # exit 1 or 2 fails the task; the reports of a partly failed run are written all the same
        bash_command=f"cd {PROJECT} && {FUNNEL_LAB} run params/q3.yaml --jobs 2",
        env={"ALERT_WEBHOOK": "{{ var.value.alert_webhook }}", "SMTP_URL": "{{ var.value.smtp_url }}"},
        append_env=True,
    )
    check >> run
