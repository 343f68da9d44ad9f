"""``monitor demo``."""

from __future__ import annotations

import click

__all__ = ["demo"]


# positive: --rate 0 died in the traffic thread (division by zero) and the demo ran on with no
# traffic; a zero or negative duration or speed ran nothing and exited 0
_POSITIVE = click.FloatRange(0.0, min_open=True)


@click.command()
@click.option("--duration", type=_POSITIVE, default=60.0, show_default=True, help="Wall-clock seconds to run.")
@click.option("--speed", type=_POSITIVE, default=30.0, show_default=True, help="Event seconds per wall second.")
@click.option("--rate", type=_POSITIVE, default=150.0, show_default=True,
              help="Calls of the well-behaved clients per wall-clock second (the attack phase adds the "
                   "attackers' calls: up to 2.5 times as many in all).")
@click.option("--port", type=click.IntRange(0, 65535), default=9108, show_default=True,
              help="Serve /metrics here (0: do not serve).")
@click.option("--alertmanager", multiple=True, help="Also send alerts to this Alertmanager URL.")
@click.option("--seed", type=int, default=0, show_default=True)
def demo(duration: float, speed: float, rate: float, port: int, alertmanager: tuple[str, ...], seed: int) -> None:
    """Train a small model, watch it, and drive normal, drifted and attacking traffic."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise click.ClickException("the demo trains a scikit-learn model: pip install 'model-monitor[dev]' (or make demo)") from None
    from monitor.config import receiver_url_problem

    for url in alertmanager:  # as rules.alertmanager is checked: else five failed sends per alert, at run time
        problem = receiver_url_problem(url)
        if problem is not None:
            raise click.BadParameter(f"{problem}; write e.g. http://127.0.0.1:9093", param_hint="--alertmanager")
    from monitor.demo import DemoSettings, run_demo

    run_demo(DemoSettings(duration_s=duration, speed=speed, rate=rate, port=port or None, seed=seed,
                          alertmanager=alertmanager), echo=click.echo)
