"""Pictures of what was distilled: the synthetic states as the robot's poses, and rollouts.

`pose_grid` draws each synthetic state as the pose it encodes (the joint positions the
observation holds; the x position the observation drops set to 0), as the SDW paper's appendix
shows synthetic states. `rollout_gif` renders policies side by side in one animation (the
student trained on the set beside the teacher), CleanRL's `capture_video` for distillation.

Frames come from `mujoco.Renderer` with shadows, reflections, skybox, fog and haze switched off:
gymnasium's own renderer keeps them on, about 0.14 s per 480x480 frame on these CPUs against
about 0.014 s without (measured here), which decides whether a 256-pose grid takes a second or
half a minute. Headless Linux renders through EGL (`MUJOCO_GL=egl`, set by sdw/__init__.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sdw.atomic import atomic_write
from sdw.data.dataset import StateNormaliser
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.student import student_policy, train_student
from sdw.distill.synthetic import SyntheticSet
from sdw.envs import make_env
from sdw.evaluate.references import teacher_policy
from sdw.networks.actor import ActorConfig
from sdw.rollout import ActFn

log = logging.getLogger(__name__)

POSES, ROLLOUT = "poses.png", "rollout.gif"
"""The pictures' file names in a run directory (sdw-eval prefixes them with the set's stem)."""
OFF_FLAGS = ("mjRND_SHADOW", "mjRND_REFLECTION", "mjRND_SKYBOX", "mjRND_FOG", "mjRND_HAZE")


POSE_CAMERA = {"distance": 2.5, "azimuth": 90.0, "elevation": -10.0}
"""A side view at the robot's centre of mass, close enough that one pose fills its tile."""


class FastRenderer:
    """RGB frames of one env's model, without the costly scene effects: from the env's default
    camera, or (`pose_view`) from the side at the robot's centre of mass."""

    def __init__(self, env, size: int, pose_view: bool = False) -> None:
        import mujoco

        self._mujoco = mujoco
        self.model, self.data = env.unwrapped.model, env.unwrapped.data
        self.renderer = mujoco.Renderer(self.model, size, size)
        self.camera = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(self.model, self.camera)
        self.pose_view = pose_view
        config = dict(getattr(env.unwrapped.mujoco_renderer, "default_cam_config", None) or {})
        if pose_view:
            config = dict(POSE_CAMERA)
        if "trackbodyid" in config:
            self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        for key, value in config.items():
            if key == "lookat":
                self.camera.lookat[:] = value
            else:
                setattr(self.camera, key, value)

    def frame(self) -> np.ndarray:
        """(size, size, 3) uint8 of the current state."""
        if self.pose_view:
            self.camera.lookat[:] = self.data.subtree_com[1]  # the robot's centre of mass
        self.renderer.update_scene(self.data, self.camera)
        for flag in OFF_FLAGS:  # update_scene resets the scene's flags
            self.renderer.scene.flags[getattr(self._mujoco.mjtRndFlag, flag)] = 0
        return self.renderer.render().copy()

    def close(self) -> None:
        self.renderer.close()


def observed_positions(env) -> tuple[int, int]:
    """(first qpos index the observation holds, how many): MuJoCo locomotion observations start
    with qpos, without the x position unless the env keeps it."""
    unwrapped = env.unwrapped
    first = 1 if getattr(unwrapped, "_exclude_current_positions_from_observation", True) else 0
    return first, unwrapped.model.nq - first


def set_pose(env, state: np.ndarray) -> None:
    """Put the env's robot in the pose a raw observation encodes (x 0, velocities 0)."""
    import mujoco

    unwrapped = env.unwrapped
    first, count = observed_positions(env)
    qpos = np.zeros(unwrapped.model.nq)
    qpos[first:first + count] = state[:count]
    unwrapped.set_state(qpos, np.zeros(unwrapped.model.nv))
    mujoco.mj_forward(unwrapped.model, unwrapped.data)


def tile(frames: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Frames of one size as a grid, row by row; empty cells white."""
    rows = -(-len(frames) // columns)
    h, w, c = frames[0].shape
    grid = np.full((rows * h, columns * w, c), 255, dtype=np.uint8)
    for i, frame in enumerate(frames):
        r, col = divmod(i, columns)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = frame
    return grid


def labelled(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with `text` written in its top-left corner."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    draw.rectangle(draw.textbbox((6, 4), text), fill=(255, 255, 255))
    draw.text((6, 4), text, fill=(0, 0, 0))
    return np.asarray(image)


def pose_grid(synthetic: SyntheticSet, path: Path, *, columns: int = 16, size: int = 96) -> Path:
    """Every synthetic state as the robot's pose, `columns` to a row, as a PNG at `path`."""
    import imageio.v3 as iio

    states = synthetic.states * synthetic.normaliser.std + synthetic.normaliser.mean
    env = make_env(synthetic.env_id)
    env.reset(seed=0)
    renderer = FastRenderer(env, size, pose_view=True)
    try:
        frames = []
        for state in states:
            set_pose(env, state)
            frames.append(renderer.frame())
    finally:
        renderer.close()
        env.close()
    image = tile(frames, min(columns, len(frames)))
    return atomic_write(path, lambda f: iio.imwrite(f, image, extension=".png"))


def rollout_gif(policies: Sequence[tuple[str, ActFn]], env_id: str, path: Path, *,
                seed: int = 0, max_steps: int = 300, every: int = 2, size: int = 240,
                fps: int = 25) -> Path:
    """One episode per policy (name, actions for a batch of raw observations) from the same
    reset seed, rendered side by side (left to right in `policies` order) every `every` steps
    for at most `max_steps` steps, as a GIF at `path`; a policy whose episode ended shows its
    last frame."""
    import imageio.v3 as iio

    envs = [make_env(env_id) for _ in policies]
    renderers = []
    try:
        observations = [env.reset(seed=seed)[0] for env in envs]
        renderers = [FastRenderer(env, size) for env in envs]
        done = [False] * len(envs)
        names = [name for name, _ in policies]
        last = [labelled(r.frame(), name) for r, name in zip(renderers, names)]
        frames = [np.concatenate(last, axis=1)]
        for step in range(1, max_steps + 1):
            for i, ((_, act), env) in enumerate(zip(policies, envs)):
                if done[i]:
                    continue
                action = np.asarray(act(observations[i][None].astype(np.float32)))[0]
                observations[i], _, terminated, truncated, _ = env.step(action)
                done[i] = terminated or truncated
                if step % every == 0 or done[i]:
                    last[i] = labelled(renderers[i].frame(), f"{names[i]}  t={step}")
            if step % every == 0:
                frames.append(np.concatenate(last, axis=1))
            if all(done):
                break
    finally:
        for renderer in renderers:
            renderer.close()
        for env in envs:
            env.close()
    log.info("rollout of %s: %d frames (%d steps) to %s", ", ".join(names), len(frames), step,
             path)
    return atomic_write(path, lambda f: iio.imwrite(f, np.stack(frames), extension=".gif",
                                                    duration=1000 / fps, loop=0))


def on_raw(act: ActFn, normaliser: StateNormaliser | None) -> ActFn:
    """`act` (for normalised states) as a policy of raw observations."""
    return act if normaliser is None else (lambda obs: act(normaliser(obs)))


def capture(synthetic: SyntheticSet, student: ActorConfig, inner: InnerOptimConfig,
            teacher, directory: Path, *, prefix: str = "", seed: int = 0,
            device: str = "cpu", max_steps: int = 300, size: int = 240,
            pose_size: int = 96) -> dict[str, Path]:
    """The pose grid of `synthetic` and a rollout GIF of a student trained on it (the inner-loop
    recipe, student seed `seed`) beside `teacher` (when given), from reset seed `seed`, at most
`max_steps` steps in `size`-pixel frames, `pose_size`-pixel poses:
    `<directory>/<prefix>poses.png` and `<prefix>rollout.gif`."""
    poses = pose_grid(synthetic, directory / f"{prefix}{POSES}", size=pose_size)
    actor = train_student(synthetic, student, inner, seed=seed, device=device)
    policies = [("student", on_raw(student_policy(actor, device), synthetic.normaliser))]
    if teacher is not None:
        policies.append(("teacher", on_raw(teacher_policy(teacher, device), teacher.normaliser)))
    gif = rollout_gif(policies, synthetic.env_id, directory / f"{prefix}{ROLLOUT}", seed=seed,
                      max_steps=max_steps, size=size)
    return {"poses": poses, "rollout": gif}
