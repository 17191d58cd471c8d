"""Fill the competition's sample submission with predictions and check the result before it is written."""

import numpy as np
import pandas as pd

from podium.errors import PodiumError


def prediction_columns(template: pd.DataFrame, id_column: str, keep: tuple = ()) -> list[str]:
    """Return the template's columns that podium fills: all but the id and the `keep` columns (such as a path)."""
    return [column for column in template.columns if column != id_column and column not in keep]


def probability_columns(template: pd.DataFrame, id_column: str, classes: list, keep: tuple = ()) -> list[str] | None:
    """Return the template's class columns when it has one column per class, else None."""
    others = prediction_columns(template, id_column, keep)
    names = {str(name) for name in classes}
    if len(others) > 1 and set(others) == names:
        return others
    return None


def fill_template(template: pd.DataFrame, id_column: str, ids: list[str], probs: np.ndarray, classes: list, keep: tuple = ()) -> pd.DataFrame:
    """Return the template with its prediction column(s) filled: labels, or one probability per class.

    `ids` and `probs` are in the template's row order. Labels keep the competition's own values,
    so string labels stay strings and integer labels stay integers. Columns in `keep` are left as they are.
    """
    submission = template.copy()
    class_columns = probability_columns(template, id_column, classes, keep)
    if class_columns is not None:
        index = {str(name): i for i, name in enumerate(classes)}
        for column in class_columns:
            submission[column] = probs[:, index[column]]
        return submission

    others = prediction_columns(template, id_column, keep)
    if len(others) != 1:
        raise PodiumError(
            f"the sample submission has columns {list(template.columns)}: expected {id_column!r} plus one label column, "
            f"or one probability column per class {classes}"
        )
    labels = [classes[i] for i in probs.argmax(axis=1)]
    submission[others[0]] = pd.Series(labels, index=submission.index, dtype=object)
    return submission


def validate_submission(submission: pd.DataFrame, template: pd.DataFrame, id_column: str, classes: list, keep: tuple = ()) -> None:
    """Raise PodiumError unless the submission matches the template's header, ids and order, and contains valid values."""
    if list(submission.columns) != list(template.columns):
        raise PodiumError(f"submission columns {list(submission.columns)} differ from the sample submission's {list(template.columns)}")
    if len(submission) != len(template):
        raise PodiumError(f"submission has {len(submission)} rows; the sample submission has {len(template)}")

    ids, expected = submission[id_column].astype(str), template[id_column].astype(str)
    if set(ids) != set(expected):
        extra, missing = sorted(set(ids) - set(expected)), sorted(set(expected) - set(ids))
        raise PodiumError(f"submission ids differ from the sample submission: {len(missing)} missing, e.g. {missing[:10]}; {len(extra)} unexpected, e.g. {extra[:10]}")
    if not (ids.to_numpy() == expected.to_numpy()).all():
        raise PodiumError("submission ids are in a different order from the sample submission; keep the template's order")

    values = submission[prediction_columns(template, id_column, keep)]
    if values.isna().any().any():
        raise PodiumError(f"submission has {int(values.isna().sum().sum())} missing values")

    class_columns = probability_columns(template, id_column, classes, keep)
    if class_columns is not None:
        numbers = values.to_numpy(dtype=np.float64)
        if not np.isfinite(numbers).all():
            raise PodiumError("submission has non-finite probabilities")
        return

    labels = values.iloc[:, 0]
    unknown = sorted(set(labels.tolist()) - set(classes), key=str)
    if unknown:
        raise PodiumError(f"submission has labels {unknown[:10]} that are not in the class list {classes}")
