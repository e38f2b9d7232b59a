"""`python -m mjx_som.render_worker REQUEST.json`: renders one evaluation episode into an mp4 (the
subprocess mjx_som.video.VideoRecorder starts; MUJOCO_GL is set by it)."""

import sys

from mjx_som.video import render_request

if __name__ == "__main__":
    sys.exit(render_request(sys.argv[1]))
