"""LlamaIndex face of langchain-stepback-profile: memory and retrieval over the same
``ProfileMemory`` core."""
