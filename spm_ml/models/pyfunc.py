"""The MLflow pyfunc face of a fitted classifier: ``predict`` returns probabilities.

MLflow's sklearn flavour would return class labels from ``predict``; a win probability is
what every consumer wants, so the model is logged as a custom pyfunc whose ``predict``
returns a DataFrame with a ``probability`` column, and top SHAP drivers on request
(``params={"top_k": 3}``), since explanations cost 20-70x a bare score.
"""

from __future__ import annotations

import json
import warnings

import mlflow.pyfunc
import pandas as pd

from spm_ml.models.gbm import CalibratedGBM


class ProbabilityModel(mlflow.pyfunc.PythonModel):
    """Wraps a fitted classifier for MLflow: any model with ``predict_proba``; explanations
    (``params={"top_k": k}``) need ``top_drivers`` too, as :class:`CalibratedGBM` has."""

    def __init__(self, model: CalibratedGBM, target: str | None = None) -> None:
        self.model = model
        self.target = target  # a flat export's outcome column: ignored, with a warning

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        target = getattr(self, "target", None)  # models pickled before it existed have none
        if target is not None and target in frame.columns:
            warnings.warn(
                f"column {target!r} is the outcome the model was trained to predict: "
                "ignored when scoring",
                UserWarning,
                stacklevel=2,
            )
            frame = frame.drop(columns=target)
        probability = self.model.predict_proba(frame)[:, 1]
        out = pd.DataFrame({"probability": probability}, index=frame.index)
        top_k = int((params or {}).get("top_k", 0))
        if top_k > 0:
            drivers = self.model.top_drivers(frame, k=top_k)
            out["drivers"] = [json.dumps(d) for d in drivers]
        return out


def unwrap(pyfunc_model: mlflow.pyfunc.PyFuncModel) -> CalibratedGBM:
    """The fitted estimator inside a loaded pyfunc (for explanations and what-ifs)."""
    return pyfunc_model.unwrap_python_model().model


def log_probability_model(
    model: CalibratedGBM,
    input_example: pd.DataFrame,
    *,
    name: str = "model",
    registered_model_name: str | None = None,
    metadata: dict | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log ``model`` as a pyfunc with a signature (asserted) inferred from real output.

    ``metadata`` (the model's :class:`~spm_ml.models.record.TrainingRecord`) is stored in
    the MLmodel file, so whoever loads the model also gets how it was trained.
    """
    from mlflow.models import infer_signature

    wrapper = ProbabilityModel(model)
    example = input_example.head(5)
    output = wrapper.predict(None, example, {"top_k": 3})
    signature = infer_signature(example, output, params={"top_k": 0})
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=wrapper,
        signature=signature,
        input_example=example,
        registered_model_name=registered_model_name,
        metadata=metadata,
    )
    if info.signature is None:
        raise RuntimeError("MLflow logged the model without a signature")
    return info
