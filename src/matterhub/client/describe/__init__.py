"""Describe servables (the SDK side of the Hub): build DLHub documents from functions and models.

```python
from matterhub.client.describe import describe_function
description = describe_function(predict_gap).set_title("Band gap").set_creators(["Doe, Jane"])
description.set_example([[1.0, 2.0]], [3.0])
client.publish_servable(description)
```
"""

from __future__ import annotations

from matterhub.client.describe.base import ServableDescription
from matterhub.client.describe.keras import describe_keras
from matterhub.client.describe.models import describe_onnx, describe_sklearn, describe_torch
from matterhub.client.describe.python import describe_files, describe_function, type_from_hint
from matterhub.client.describe.requirements import detect_requirements, imported_modules

__all__ = [
    "ServableDescription",
    "describe_files",
    "describe_function",
    "describe_keras",
    "describe_onnx",
    "describe_sklearn",
    "describe_torch",
    "detect_requirements",
    "imported_modules",
    "type_from_hint",
]
