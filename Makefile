# The two set-up commands of the README. Each creates .venv and installs what it needs on first use
# (and again whenever pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

NODE_CLIENT := tests/foreign/node

.PHONY: demo test chromium clean gpu-check

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/candleflow demo $(ARGS)

test: $(STAMP) chromium $(NODE_CLIENT)/node_modules/.installed-stamp
	$(PY) -m pytest $(ARGS)

# The foreign-client test's Node.js packages (kafkajs, the Confluent registry client), pinned by the lock file.
$(NODE_CLIENT)/node_modules/.installed-stamp: $(NODE_CLIENT)/package.json $(NODE_CLIENT)/package-lock.json
	npm ci --prefix $(NODE_CLIENT) --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard test drives Debian's Chromium headless (no browser download at run time).
chromium:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium >/dev/null)

# GPU check (issue 15): on a CUDA machine with no network, the GPU path against the CPU path on one trained
# bundle, side by side (bench/gpu_check.py, docs/mamba.md "GPU check"; under 5 minutes). What it expects there:
# - GPU_PYTHON (default python3) with a CUDA build of PyTorch and onnx, onnxruntime, numpy, pandas, pyarrow and
#   tqdm importable, as the lent GPU machines' image has them (its python3 is itself a venv holding torch). The
#   project runs from this source tree (PYTHONPATH), not pip-installed: its other pinned dependencies (faust,
#   lightgbm, the CPU torch==2.13, ...) are not needed by the check and cannot be downloaded there.
# - The gpu extra, if at all, as wheels in .whl/: installed with pip --no-index --no-deps --target var/gpu-site,
#   first on PYTHONPATH, so that onnxruntime-gpu there shadows the image's CPU onnxruntime and nothing of the
#   image is modified. Without .whl/ the machine's own packages are used as they are. (Not a venv with
#   --system-site-packages: made from a venv's python it would see the base interpreter's packages, not torch.)
#   Sizes: onnxruntime-gpu 1.31.1 for cp312 is a 256 MB wheel, over what a lent machine's call can carry
#   (64 MiB); mamba-ssm is an sdist only (216 kB) that fetches a prebuilt wheel at install (no network there)
#   or compiles its CUDA kernels with nvcc for minutes. Without them the check still runs: ONNX Runtime on the
#   CPU provider and the PyTorch Mamba block on CUDA, each reported as such.
# - A trained bundle at CANDLEFLOW_MODEL_DIR or var/models/candleflow (git-ignored: carry it along); without
#   its mamba/ member the check trains one there (2 epochs, CPU), without a bundle it needs lightgbm to train one.
# It runs tests/models/test_mamba_cuda_parity.py first (trained weights; --noconftest: the test conftests
# import LightGBM and the broker), then bench.gpu_check --require-gpu (exit 1: a parity check failed, 2: no CUDA
# device, 3: the gpu extra incomplete there), and fails if either did. ARGS go to bench.gpu_check.
GPU_PYTHON ?= python3
GPU_SITE := var/gpu-site
gpu-check:
	rm -rf $(GPU_SITE) && mkdir -p $(GPU_SITE)
	if ls .whl/*.whl >/dev/null 2>&1; then $(GPU_PYTHON) -m pip install --quiet --no-index --no-deps --no-compile \
		--no-cache-dir --target $(GPU_SITE) .whl/*.whl; fi
	export PYTHONPATH=$(CURDIR)/$(GPU_SITE):$(CURDIR) PYTHONUNBUFFERED=1; \
	$(GPU_PYTHON) -m pytest --noconftest -q tests/models/test_mamba_cuda_parity.py; test=$$?; \
	$(GPU_PYTHON) -m bench.gpu_check --require-gpu $(ARGS); check=$$?; \
	echo "gpu-check: CUDA parity test exit $$test, bench.gpu_check exit $$check"; [ $$test -eq 0 ] && [ $$check -eq 0 ]

clean:
	rm -rf $(VENV) var test-artifacts $(NODE_CLIENT)/node_modules
