"""attention-zoo: Keras 3 attention models that train, export, serve and fine-tune.

import zoo
model = zoo.load("saved_models/translation")
result = model.translate("the old dog saw a cat .")
zoo.plot_attention(result, "attention.png")
"""

__version__ = "0.1.0"

# The task registry installs the catalog recipes read task schemas from.
import zoo.tasks  # noqa: E402, F401
from zoo.tasks.base import TruncationWarning  # noqa: E402, F401


def load(path, version=None, *, trust=False):
    """Loads an exported model (see `zoo.hub.load`; `trust`: see `zoo.security`)."""
    from zoo.hub import load as _load

    return _load(path, version, trust=trust)


def plot_attention(result, path=None, **kwargs):
    """Draws a result's attention (see `zoo.hub.plot_attention`)."""
    from zoo.hub import plot_attention as _plot

    return _plot(result, path, **kwargs)
