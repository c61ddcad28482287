"""Serves SmolLM2-135M-Instruct through llama.cpp's OpenAI-compatible server
(xllamacpp, a prebuilt wheel) on 127.0.0.1, one thread, for the tests that
need a real model server we did not write. Prints the base URL, then serves
until it is killed.

Usage: python llamacpp_server.py MODEL.gguf PORT
"""
import sys
import time

import xllamacpp as xlc

model, port = sys.argv[1], int(sys.argv[2])
params = xlc.CommonParams()
params.model.path = model
params.n_ctx = 2048
params.hostnames = ["127.0.0.1"]
params.port = port
params.cpuparams.n_threads = 1
params.cpuparams_batch.n_threads = 1
params.n_parallel = 1
server = xlc.Server(params)
print(server.listening_address, flush=True)
while True:
    time.sleep(3600)
