"""Pictures of the race: contour plot of a 2-D problem with every trajectory, still or animated.

matplotlib is an optional dependency (``pip install "fastopt[plot]"``); it is imported here
only, when a picture is asked for. Every racer has its own colour *and* its own line style
(``STYLES``, by racer name, from the optimizer records, so a method looks the same in every picture and in any
``--methods`` order): ten colours that stand out on the light grey surface, ten dash patterns,
so no two paths can be confused even where they overlap or for colour-blind readers. Each path
ends in a marker; the view is framed on the paths and the minimum they head for.
"""

import os

import numpy as np

from fastopt._registry import RACERS

# racer key: (colour, line style), from each racer's record (a racer without one gets a
# fallback). Colours: matplotlib's tab10 with its grey replaced by
# black (the surface is grey); dash patterns as (offset, (on, off, ...)) in points.
STYLES = {key: racer.style for key, (_, racer) in RACERS.items() if racer.style is not None}
# Filled markers, one per racer, 15 of them (the records may add racers; beyond 15 the
# markers repeat, the racers still told apart by colour and dashes).
END_MARKERS = "os^vDPX*<>dph8H+x1234"
FALLBACK_STYLES = [(0, (4, 1, 4, 4)), (0, (8, 2, 1, 2, 1, 2, 1, 2))]
MAX_FRAMES = 60
GIF_DPI = 55  # small frames: a GIF stores every one in full
MARGIN = 0.08  # of the framed range, on each side


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def style(key, i=0):
    """``(colour, line style, end marker)`` of racer ``key`` (the ``i``-th drawn)."""
    keys = list(STYLES)
    if key in STYLES:
        colour, dashes = STYLES[key]
        return colour, dashes, END_MARKERS[keys.index(key) % len(END_MARKERS)]
    colour = STYLES[keys[i % len(keys)]][0]
    return colour, FALLBACK_STYLES[i % len(FALLBACK_STYLES)], END_MARKERS[i % len(END_MARKERS)]


def frame(problem, results):
    """The view ``((x_lo, x_hi), (y_lo, y_hi))``: every finite point of every path and the
    known minimum nearest to each path's end, with a margin, within the problem's domain."""
    points = [r.path[np.all(np.isfinite(r.path), axis=1)] for r in results]
    minima = []
    for r, finite in zip(results, points):
        end = finite[-1] if len(finite) else r.path[0]
        minima.append(min((point for point, _ in problem.minima),
                          key=lambda m: float(np.hypot(*(end - m)))))  # (no overflow)
    cloud = np.vstack(points + [np.array(minima)])
    (dx_lo, dx_hi), (dy_lo, dy_hi) = problem.domain
    lo = np.maximum(cloud.min(axis=0), [dx_lo, dy_lo])
    hi = np.minimum(cloud.max(axis=0), [dx_hi, dy_hi])
    span = np.maximum(hi - lo, 0.05 * np.array([dx_hi - dx_lo, dy_hi - dy_lo]))
    lo, hi = lo - MARGIN * span, hi + MARGIN * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _draw_surface(ax, problem, view):
    """Filled contours of f over the view, logarithmic where the surface needs it."""
    from matplotlib.colors import LogNorm

    (x_lo, x_hi), (y_lo, y_hi) = view
    X, Y = np.meshgrid(np.linspace(x_lo, x_hi, 300), np.linspace(y_lo, y_hi, 300))
    Z = problem.f(np.stack([X, Y], axis=-1))
    if problem.log_scale:
        gap = Z - problem.f_min
        floor = max(np.percentile(gap, 0.5), 1e-3)
        levels = np.logspace(np.log10(floor), np.log10(max(gap.max(), 10 * floor)), 25)
        ax.contourf(X, Y, np.maximum(gap, floor), levels=levels, norm=LogNorm(),
                    cmap="Greys", alpha=0.45)
        ax.contour(X, Y, np.maximum(gap, floor), levels=levels, norm=LogNorm(),
                   colors="#9a9a9a", linewidths=0.5)
    else:
        ax.contourf(X, Y, Z, levels=25, cmap="Greys", alpha=0.45)
        ax.contour(X, Y, Z, levels=25, colors="#9a9a9a", linewidths=0.5)
    for point, _ in problem.minima:
        ax.plot(point[0], point[1], marker="*", markersize=20, color="gold",
                markeredgecolor="black", linestyle="none", zorder=7)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _label(r):
    return f"{r.label} (lr={r.lr:.2g}): {r.outcome}"


def _figure(problem, results, steps, tol, dpi=100, schedule=None):
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    from fastopt._race import RACERS, ranked

    fig, ax = plt.subplots(figsize=(12, 6.5), dpi=dpi)
    _draw_surface(ax, problem, frame(problem, results))
    start = results[0].path[0]
    ax.plot(start[0], start[1], marker="o", markersize=10, color="white",
            markeredgecolor="black", markeredgewidth=1.5, linestyle="none", zorder=7,
            label="start")
    ax.plot([], [], marker="*", markersize=14, color="gold", markeredgecolor="black",
            linestyle="none", label="minimum")
    order = {id(r): i for i, r in enumerate(results)}
    lines, ends = [], []
    for rank, r in enumerate(ranked(results), 1):
        colour, dashes, marker = style(r.key, order[id(r)])
        finite = r.path[np.all(np.isfinite(r.path), axis=1)]
        noisy = RACERS.get(r.key, ("", "", "exact"))[2] != "exact"
        # The leaders on top; noisy paths thinner and translucent, so they hide nothing.
        (line,) = ax.plot(finite[:, 0], finite[:, 1], color=colour, linestyle=dashes,
                          linewidth=1.3 if noisy else 2.2, alpha=0.75 if noisy else 1.0,
                          label=f"{rank}. {_label(r)}", zorder=5 - rank / 100,
                          marker=marker, markevery=[len(finite) - 1], markersize=9,
                          markeredgecolor="black")
        lines.append((r, line, finite))
        ends.append(finite[-1])
    lr_schedule = "" if schedule in (None, "none") else f"; learning rates: {schedule}"
    ax.set_title(f"{problem.name}: {problem.description}{lr_schedule}\n{steps} steps; reached = "
                 f"f - f_min <= {tol:g} from that step on; markers: where each path ends",
                 fontsize=11)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=10, frameon=False,
              handlelength=4)
    fig.tight_layout()
    return fig, ax, lines


def save_png(problem, results, steps, path, tol=1e-4, schedule=None):
    """Contour plot with every trajectory, written to ``path`` (PNG); ``schedule`` (the
    race's learning-rate schedule, a name) goes into the title."""
    import matplotlib.pyplot as plt

    fig, _, _ = _figure(problem, results, steps, tol, schedule=schedule)
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def save_gif(problem, results, steps, path, fps=15, tol=1e-4, schedule=None):
    """The race as an animated GIF: trajectories grow step by step (at most 60 frames).

    The surface is drawn once; each frame restores it and draws only the trajectories
    (matplotlib's blitting), then Pillow (a matplotlib dependency) writes the frames.
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax, lines = _figure(problem, results, steps, tol, dpi=GIF_DPI, schedule=schedule)
    try:
        counter = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top", fontsize=11,
                          bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
        for _, line, _ in lines:
            line.set_animated(True)
        counter.set_animated(True)
        fig.canvas.draw()
        background = fig.canvas.copy_from_bbox(fig.bbox)
        longest = max(len(finite) for _, _, finite in lines)
        images = []
        for k in np.unique(np.linspace(1, longest, min(MAX_FRAMES, longest)).astype(int)):
            fig.canvas.restore_region(background)
            for _, line, finite in lines:
                shown = finite[:k]
                line.set_data(shown[:, 0], shown[:, 1])
                line.set_markevery([len(shown) - 1])  # the marker rides the head
                ax.draw_artist(line)
            counter.set_text(f"step {k - 1} / {steps}")
            ax.draw_artist(counter)
            images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()))
    finally:
        plt.close(fig)
    palette = images[-1].quantize(colors=255)  # the last frame has every colour
    frames = [image.quantize(palette=palette) for image in images]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps),
                   loop=0)
    return path


def output_path(directory, problem_name, extension):
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f"race_{problem_name}.{extension}")
