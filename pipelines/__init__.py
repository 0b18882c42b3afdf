import os

# TensorFlow's C++ start-up lines (CUDA probing, CPU features) are noise in a CLI's output; a user's setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
