"""Evaluation videos: an evaluation episode recorded on the device (qpos / qvel per step, Trainer.evaluate)
is rendered with MuJoCo's renderer into an mp4, in a subprocess (`python -m mjx_som.render_worker REQUEST.json`),
so that the training chunks go on while it renders. Headless rendering needs an OpenGL context: MUJOCO_GL
as the user set it, else EGL and then OSMesa; where none works the recorder says so once and records no
more videos.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import warnings

import numpy as np

NO_RENDERER = 3  # the worker's exit status when no OpenGL context could be made
GL_BACKENDS = ("egl", "osmesa")


@contextlib.contextmanager
def fork_and_exec():
    """Silences JAX's warning at every fork for a block that forks only to exec (a render worker, imageio's
    ffmpeg), which is safe; the warning filters are restored after it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        yield


def render(model, qpos: np.ndarray, qvel: np.ndarray, camera: dict, width: int, height: int) -> np.ndarray:
    """Frames [T, height, width, 3] uint8 of the states (qpos [T, nq], qvel [T, nv]) of an mujoco.MjModel."""
    import mujoco

    renderer = mujoco.Renderer(model, height, width)
    data = mujoco.MjData(model)
    view = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, view)
    view.distance, view.elevation, view.azimuth = camera["distance"], camera["elevation"], camera["azimuth"]
    if camera.get("track_body") is not None:
        view.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        view.trackbodyid = camera["track_body"]
    else:
        view.lookat[:] = camera["lookat"]
    frames = []
    for q, v in zip(qpos, qvel, strict=True):
        data.qpos[:], data.qvel[:] = q, v
        mujoco.mj_forward(model, data)
        renderer.update_scene(data, view)
        frames.append(renderer.render())
    renderer.close()
    return np.stack(frames)


def write_video(path: str, frames: np.ndarray, fps: float) -> None:
    """frames [T, H, W, 3] uint8 as an H.264 mp4 (imageio's bundled ffmpeg), or as a GIF for a .gif path."""
    import imageio.v2 as imageio

    with fork_and_exec():
        if path.endswith(".gif"):
            imageio.mimwrite(path, list(frames), duration=1000.0 / fps, loop=0)
        else:
            imageio.mimwrite(path, list(frames), fps=fps, codec="libx264", macro_block_size=1)


def render_request(request_path: str) -> int:
    """Renders one request (JSON: model, episode, out, camera, width, height, fps); exit status 0, or
    NO_RENDERER when no OpenGL context can be made."""
    import mujoco

    with open(request_path) as f:
        request = json.load(f)
    model = mujoco.MjModel.from_binary_path(request["model"])
    episode = np.load(request["episode"])
    try:
        frames = render(model, episode["qpos"], episode["qvel"], request["camera"], request["width"], request["height"])
    except Exception as e:  # noqa: BLE001 — each GL backend fails in its own way (ImportError, RuntimeError, ...)
        if "GL" in type(e).__name__ or "gl" in str(e).lower() or isinstance(e, ImportError):
            print(f"no OpenGL context with MUJOCO_GL={os.environ.get('MUJOCO_GL')}: {e}", file=sys.stderr)
            return NO_RENDERER
        raise
    write_video(request["out"], frames, request["fps"])
    return 0


class VideoRecorder:
    """Turns evaluation episodes into RUN_DIR/videos/<env_steps>.mp4: start() hands one to a render
    subprocess, poll() returns the finished ones [(env_steps, path)]. `every`: a video at the first and
    the last evaluation and every `every`-th (0: none). Only for MuJoCo tasks (env.mj_model)."""

    def __init__(self, run_dir: str, env, every: int, size: tuple[int, int] = (320, 240)):
        self.folder = os.path.join(run_dir, "videos")
        self.env, self.every, self.size = env, every, size
        self.enabled = every > 0 and hasattr(env, "mj_model")
        user_gl = os.environ.get("MUJOCO_GL")
        self.backends = [user_gl] if user_gl else list(GL_BACKENDS)
        self.tried: list[str] = []
        self.pending: list[tuple[int, subprocess.Popen, str]] = []

    def due(self, eval_index: int, last: bool) -> bool:
        """Whether the evaluation number eval_index (0, 1, ...) gets a video."""
        return self.enabled and (eval_index == 0 or last or eval_index % self.every == 0)

    def start(self, env_steps: int, episode: dict) -> None:
        """Saves the episode's states (up to its length) and starts rendering them."""
        import mujoco

        os.makedirs(self.folder, exist_ok=True)
        model_path = os.path.join(self.folder, "model.mjb")
        if not os.path.exists(model_path):
            mujoco.mj_saveModel(self.env.mj_model, model_path, None)
        length = max(int(episode["length"]), 1)
        stem = os.path.join(self.folder, str(env_steps))
        np.savez(stem + ".npz", qpos=np.asarray(episode["qpos"])[:length], qvel=np.asarray(episode["qvel"])[:length])
        request = {
            "model": model_path,
            "episode": stem + ".npz",
            "out": stem + ".mp4",
            "camera": self.env.camera,
            "width": self.size[0],
            "height": self.size[1],
            "fps": 1.0 / self.env.dt,
        }
        with open(stem + ".json", "w") as f:
            json.dump(request, f)
        self.pending.append((env_steps, self._spawn(stem + ".json"), stem))

    def _spawn(self, request_path: str) -> subprocess.Popen:
        env = {**os.environ, "MUJOCO_GL": self.backends[0], "JAX_PLATFORMS": "cpu"}
        # the child keeps its own copy of the log's descriptor; its own session: a Ctrl-C meant for training
        # does not kill a video being written
        with open(os.path.join(self.folder, "render.log"), "a") as log, fork_and_exec():
            return subprocess.Popen(
                [sys.executable, "-m", "mjx_som.render_worker", request_path],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def poll(self, wait: bool = False) -> list[tuple[int, str]]:
        """The videos finished since the last call (all pending ones with wait=True)."""
        done, still = [], []
        for env_steps, proc, stem in self.pending:
            code = proc.wait() if wait else proc.poll()
            if code is None:
                still.append((env_steps, proc, stem))
            elif code == 0:
                for suffix in (".npz", ".json"):
                    os.remove(stem + suffix)
                done.append((env_steps, stem + ".mp4"))
            elif code == NO_RENDERER and len(self.backends) > 1:
                self.tried.append(self.backends.pop(0))  # e.g. EGL failed: try OSMesa
                retry = self._spawn(stem + ".json")
                if wait:
                    retry.wait()
                still.append((env_steps, retry, stem))
            else:
                self._give_up(code)
        self.pending = still
        if wait and still:
            return done + self.poll(wait=True)
        return done

    def _give_up(self, code: int) -> None:
        if not self.enabled:
            return
        self.enabled = False
        reason = (
            f"no OpenGL renderer works here (MUJOCO_GL tried: {', '.join(self.tried + self.backends[:1])})"
            if code == NO_RENDERER
            else f"the renderer failed (exit status {code})"
        )
        warnings.warn(
            f"evaluation videos are off for this run: {reason}; see {self.folder}/render.log. Training goes on.",
            stacklevel=3,
        )
