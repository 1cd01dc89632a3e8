import os
import sys

# Tests import the hand-made environments as `envs` (also as a module:ClassName entry point).
sys.path.insert(0, os.path.dirname(__file__))
