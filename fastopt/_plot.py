"""Pictures of the race: contour plot of a 2-D problem with every trajectory, still or animated.

matplotlib is an optional dependency (``pip install "fastopt[plot]"``); it is imported here
only, when a picture is asked for. Colours are the Okabe-Ito palette (safe for the common
kinds of colour blindness), with line styles to tell apart the racers that share a colour.
"""

import os

import numpy as np

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000"]
LINE_STYLES = ["-", "--", "-."]
MAX_FRAMES = 60
GIF_DPI = 55  # small frames: a GIF stores every one in full


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _style(i):
    return OKABE_ITO[i % len(OKABE_ITO)], LINE_STYLES[(i // len(OKABE_ITO)) % len(LINE_STYLES)]


def _draw_surface(ax, problem):
    """Filled contours of f over the plotting domain, logarithmic where the surface needs it."""
    from matplotlib.colors import LogNorm

    (x_lo, x_hi), (y_lo, y_hi) = problem.domain
    X, Y = np.meshgrid(np.linspace(x_lo, x_hi, 300), np.linspace(y_lo, y_hi, 300))
    Z = problem.f(np.stack([X, Y], axis=-1))
    if problem.log_scale:
        gap = Z - problem.f_min
        floor = max(np.percentile(gap, 0.5), 1e-3)
        levels = np.logspace(np.log10(floor), np.log10(gap.max()), 30)
        ax.contourf(X, Y, np.maximum(gap, floor), levels=levels, norm=LogNorm(), cmap="Greys_r",
                    alpha=0.55)
        ax.contour(X, Y, np.maximum(gap, floor), levels=levels, norm=LogNorm(), colors="grey",
                   linewidths=0.4)
    else:
        ax.contourf(X, Y, Z, levels=30, cmap="Greys_r", alpha=0.55)
        ax.contour(X, Y, Z, levels=30, colors="grey", linewidths=0.4)
    for point, _ in problem.minima:
        ax.plot(point[0], point[1], marker="*", markersize=16, color="white",
                markeredgecolor="black", linestyle="none", zorder=5)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _figure(problem, results, steps, dpi=100):
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.5, 6.5), dpi=dpi)
    _draw_surface(ax, problem)
    start = results[0].path[0]
    ax.plot(start[0], start[1], marker="o", markersize=8, color="black", linestyle="none",
            zorder=5, label="start")
    ax.plot([], [], marker="*", markersize=12, color="white", markeredgecolor="black",
            linestyle="none", label="minimum")
    lines = []
    for i, r in enumerate(results):
        colour, style = _style(i)
        (line,) = ax.plot(r.path[:, 0], r.path[:, 1], color=colour, linestyle=style,
                          linewidth=2, label=f"{r.label} (lr={r.lr:g})", zorder=4)
        lines.append(line)
    ax.set_title(f"{problem.name}: {problem.description} -- {steps} steps")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, frameon=False)
    fig.tight_layout()
    return fig, ax, lines


def save_png(problem, results, steps, path):
    """Contour plot with every trajectory, written to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig, _, _ = _figure(problem, results, steps)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_gif(problem, results, steps, path, fps=15):
    """The race as an animated GIF: trajectories grow step by step (at most 60 frames).

    The surface is drawn once; each frame restores it and draws only the trajectories
    (matplotlib's blitting), then Pillow (a matplotlib dependency) writes the frames.
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax, lines = _figure(problem, results, steps, dpi=GIF_DPI)
    heads = [ax.plot([], [], marker="o", color=line.get_color(), markersize=6,
                     linestyle="none", zorder=6)[0] for line in lines]
    counter = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top", fontsize=11,
                      bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    for artist in (*lines, *heads, counter):
        artist.set_animated(True)
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)
    longest = max(len(r.path) for r in results)
    images = []
    for k in np.unique(np.linspace(1, longest, min(MAX_FRAMES, longest)).astype(int)):
        fig.canvas.restore_region(background)
        for r, line, head in zip(results, lines, heads):
            shown = r.path[:k]
            line.set_data(shown[:, 0], shown[:, 1])
            head.set_data(shown[-1:, 0], shown[-1:, 1])
            ax.draw_artist(line)
            ax.draw_artist(head)
        counter.set_text(f"step {k - 1} / {steps}")
        ax.draw_artist(counter)
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()))
    plt.close(fig)
    palette = images[-1].quantize(colors=255)  # the last frame has every colour
    frames = [image.quantize(palette=palette) for image in images]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps),
                   loop=0)
    return path


def output_path(directory, problem_name, extension):
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f"race_{problem_name}.{extension}")
