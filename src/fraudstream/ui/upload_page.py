"""Upload view (the seed's first view): CSV files listed with their status, each sent with a button."""

import time

import streamlit as st

from fraudstream.config import Settings
from fraudstream.ui.uploads import (
    MAX_UPLOAD_MB,
    SendFailed,
    Status,
    Upload,
    progress_text,
    read_upload,
    send_upload,
    settle_interrupted,
)

settings = Settings()
st.title("Upload transactions")
st.caption(
    f"CSV files in the input format (the seed's `new_small.csv`), up to {MAX_UPLOAD_MB} MB each. "
    f"Each row is sent to the `{settings.topic_transactions}` topic with a fresh transaction id."
)

files = st.file_uploader(
    "CSV files", type=["csv"], accept_multiple_files=True, max_upload_size=MAX_UPLOAD_MB, key="csv_files"
)
uploads: dict[str, Upload] = st.session_state.setdefault("uploads", {})
current = {file.file_id: file for file in files}
for file_id in set(uploads) - set(current):
    del uploads[file_id]
for file_id, file in current.items():
    if file_id not in uploads:
        uploads[file_id] = read_upload(file.name, file.getvalue())
settle_interrupted(list(uploads.values()))


def send(upload: Upload, status: st.delta_generator.DeltaGenerator) -> None:
    upload.status = Status.SENDING
    status.write(upload.status.value)
    bar = st.progress(0.0, text=f"sending {upload.name}")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=progress_text(done, total, time.perf_counter() - started))

    try:
        report = send_upload(settings, upload.frame, progress)
    except SendFailed as error:
        upload.status, upload.message = Status.FAILED, f"{error}; the file can be sent again"
    else:
        upload.status = Status.SENT
        bar.progress(1.0, text=progress_text(report.sent, report.sent, report.seconds))
        upload.message = f"sent {report.sent:,} rows in {report.seconds:.1f} s ({report.rate:,.0f} rows/s)"
    status.write(upload.status.value)


if uploads:
    header = st.columns([4, 1, 1, 1])
    for column, label in zip(header, ["file", "rows", "status"], strict=False):
        column.markdown(f"**{label}**")
for file_id, upload in uploads.items():
    name, rows, status_column, action = st.columns([4, 1, 1, 1], vertical_alignment="center")
    name.write(upload.name)
    rows.write("—" if upload.rows is None else f"{upload.rows:,}")
    status = status_column.empty()
    status.write(upload.status.value)
    clicked = action.button("Send", key=f"send-{file_id}", disabled=upload.frame is None)
    if clicked:
        send(upload, status)
    if upload.status in (Status.REFUSED, Status.FAILED):
        st.error(f"{upload.name}: {upload.message}")
    elif upload.message:
        st.success(f"{upload.name}: {upload.message}")
