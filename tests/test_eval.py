"""Watch and ship a policy: evaluation videos in the run and in W&B, launch/eval.py's evaluation (which
reproduces the run's own), and the exported policy, loaded by a process that imports jax alone."""

import glob
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import mjx_som
from mjx_som.evaluation import EvalOptions, evaluate_run
from mjx_som.export import policy_function

# InvertedPendulum for 800 env steps: two evaluations, each filmed (an untrained pole falls within ~100
# steps, so the videos are short)
SETTINGS = dict(
    num_envs=4,
    total_steps=800,
    learning_starts=200,
    log_every=400,
    eval_every=400,
    eval_episodes=4,
    video_every=1,
    wandb_mode="offline",
    progress=False,
    som=dict(actor_hidden=(16,), critic_hidden=(16,), num_samples=8, num_candidates=4),
)


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory):
    """The trained run, its loaded form, and every RunLogger.log_media call [(key, files, step)]."""
    from mjx_som.logging import RunLogger

    run_dir = str(tmp_path_factory.mktemp("eval") / "pendulum")
    media_calls = []
    log_media = RunLogger.log_media
    with pytest.MonkeyPatch.context() as patch:

        def spy(logger, key, files, step):
            media_calls.append((key, list(files), step))
            return log_media(logger, key, files, step)

        patch.setattr(RunLogger, "log_media", spy)
        result = mjx_som.train("InvertedPendulum-v4", run_dir=run_dir, **SETTINGS)
    return result, mjx_som.load(run_dir), media_calls


def test_each_evaluation_is_filmed_into_the_run_and_wandb(pendulum):
    import imageio.v3 as iio

    result, run, media_calls = pendulum
    videos = os.path.join(result.run_dir, "videos")
    assert sorted(glob.glob(os.path.join(videos, "*.mp4"))) == [os.path.join(videos, f"{s}.mp4") for s in (400, 800)]
    assert result.summary["videos"] == [os.path.join(videos, f"{s}.mp4") for s in (400, 800)]
    assert not glob.glob(os.path.join(videos, "*.npz"))  # the rendered episodes' states are cleaned up
    frames = iio.imread(os.path.join(videos, "800.mp4"))
    _, episode = run.evaluate()  # the same key and parameters: the filmed episode
    again, _ = run.evaluate()
    assert len(run._evaluators) == 1 and again["eval/episode_return"] == result.summary["eval/episode_return"]
    assert frames.shape == (int(episode["length"]), 240, 320, 3)
    change = np.abs(frames.astype(int) - frames[:1].astype(int)).mean(axis=(1, 2, 3))
    assert change.max() > 0.2  # the scene moves (a still scene: < 0.05, codec noise): an episode, not one frame
    logged = glob.glob(os.path.join(result.run_dir, "wandb", "*run-*", "files", "media", "videos", "eval", "*"))
    assert len(logged) == 2, logged  # eval/video, once per evaluation
    # W&B keeps one value per key and step: videos finishing together go in one call, in env-step order
    video_calls = [(files, step) for key, files, step in media_calls if key == "eval/video"]
    assert len({step for _, step in video_calls}) == len(video_calls), video_calls
    assert [path for files, _ in video_calls for path, _ in files] == result.summary["videos"]


def test_eval_reproduces_the_runs_last_evaluation_and_refuses_another_shape(pendulum, capsys):
    result, _, _ = pendulum
    metrics = evaluate_run(EvalOptions(result.run_dir))
    assert metrics["eval/episode_return"] == result.summary["eval/episode_return"]
    assert f"return {metrics['eval/episode_return']:.2f}" in capsys.readouterr().out
    with pytest.raises(ValueError, match="has observations of 11 and actions of 3; the run's policy takes 4"):
        evaluate_run(EvalOptions(result.run_dir, env="Hopper-v4"))
    with pytest.raises(ValueError, match="InvertedPendulum has no override 'friction'"):
        evaluate_run(EvalOptions(result.run_dir, env_override=("friction=2",)))


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(episodes=-1), r"--episodes must be >= 0 \(0 = the run's own\), got -1"),
        (dict(export="{tmp}/a_file"), "--export '.*a_file' is a file; give a folder"),
        (dict(video="{tmp}/missing/run.mp4"), "--video '.*run.mp4': the folder '.*missing' does not exist"),
        (dict(video="{tmp}/run.avi"), "--video '.*run.avi': the file name must end in .mp4 or .gif"),
    ],
)
def test_eval_refuses_bad_flags_before_loading_anything(tmp_path, changes, message):
    (tmp_path / "a_file").write_text("x")
    changes = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in changes.items()}
    with pytest.raises(ValueError, match=message):  # the run folder does not even exist: nothing was loaded
        evaluate_run(EvalOptions(str(tmp_path / "no_run"), **changes))


def test_the_exported_policy_runs_with_jax_alone(pendulum, tmp_path):
    _, run, _ = pendulum
    spec = run.export(str(tmp_path / "policy"))
    assert (spec["observation_size"], spec["action_size"], spec["action_high"]) == (4, 1, [3.0])
    obs = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    script = (
        "import sys, jax, numpy as np\n"
        "policy = jax.export.deserialize(open('policy/policy.jax', 'rb').read())\n"
        "np.save('actions.npy', np.asarray(policy.call(np.load('obs.npy'), jax.random.PRNGKey(3))))\n"
        "assert not any(m.split('.')[0] in ('mjx_som', 'envs', 'brax', 'mujoco') for m in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    actions = np.load(tmp_path / "actions.npy")
    np.testing.assert_array_equal(actions, jax.jit(policy_function(run))(obs, jax.random.PRNGKey(3)))
    # the trained policy (mjx_som.load's, in the env's units): equal but for XLA's float rounding
    trained = run.env.scale_action(run.policy(obs, jax.random.PRNGKey(3)))
    np.testing.assert_allclose(actions, np.asarray(trained), rtol=1e-6, atol=1e-6)
    assert json.loads((tmp_path / "policy" / "policy.json").read_text())["env"] == "InvertedPendulum-v4"


class _FakeRender:
    """A render subprocess that has already exited with `code`."""

    def __init__(self, code):
        self.code = code

    def poll(self):
        return self.code

    def wait(self):
        return self.code


def test_a_missing_renderer_falls_back_then_gives_up_once(tmp_path, monkeypatch):
    """EGL failing (NO_RENDERER) is retried with OSMesa; when that fails too, one warning and no more
    videos. (The real rendering: the tests above.)"""
    from mjx_som.video import NO_RENDERER, VideoRecorder

    class Task:  # what the recorder reads of a MuJoCo task
        mj_model = None
        camera, dt = {}, 0.04

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    recorder = VideoRecorder(str(tmp_path), Task(), every=1)
    spawned = []
    monkeypatch.setattr(
        recorder,
        "_spawn",
        lambda request: (
            spawned.append(recorder.backends[0]) or _FakeRender({"egl": NO_RENDERER, "osmesa": 0}[recorder.backends[0]])
        ),
    )
    monkeypatch.setattr("mujoco.mj_saveModel", lambda *args: None)
    episode = {"qpos": np.zeros((3, 2)), "qvel": np.zeros((3, 2)), "length": 3}
    recorder.start(400, episode)
    (tmp_path / "videos" / "400.mp4").write_bytes(b"")  # what the (fake) OSMesa worker wrote
    assert recorder.poll(wait=True) == [(400, str(tmp_path / "videos" / "400.mp4"))]
    assert spawned == ["egl", "osmesa"] and recorder.enabled
    monkeypatch.setattr(recorder, "_spawn", lambda request: _FakeRender(NO_RENDERER))
    recorder.start(800, episode)
    with pytest.warns(UserWarning, match=r"videos are off for this run: no OpenGL renderer works here"):
        assert recorder.poll(wait=True) == []
    assert not recorder.enabled and not recorder.due(2, last=True)
