"""LM backends behind one contract (runtime.py): llama.cpp in-process and OpenAI-compatible
servers, with model files, CPU kernel choice, threads and speed profiles.
"""
