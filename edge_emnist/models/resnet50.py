"""ResNet-50 (He et al. 2016, bottleneck v1), trained from scratch.

    image 28x28x1
    [channels=3: the grey channel repeated three times, as the study fed it]
    zero-pad to 32x32 (the smallest input ResNet-50's five stride-2 stages accept), or resize to input_size
    ResNet-50 body (conv1 7x7/2, max pool, stages of 3, 4, 6, 3 bottleneck blocks)
    global average pooling -> dense num_classes, softmax

At 47 classes: 23,630,895 trainable parameters with channels=3 (the study's count), 23,624,623 with 1.
"""

from __future__ import annotations

from edge_emnist.models import register
from edge_emnist.models.keras_api import keras, layers
from edge_emnist.models.layers import classifier_head, image_input


@register("resnet50", "ResNet-50 v1 from scratch; --channels 3 and --input-size 224 reproduce the studies")
def resnet50(num_classes: int, channels: int = 1, input_size: int = 32):
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if input_size < 32:
        raise ValueError(f"ResNet-50 needs an input of at least 32x32, got {input_size}")
    inputs = image_input()
    x = inputs
    if channels == 3:
        x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    if input_size == 32:
        x = layers.ZeroPadding2D(2, name="pad_to_32")(x)
    else:
        x = layers.Resizing(input_size, input_size, name=f"resize_to_{input_size}")(x)
    body = keras.applications.ResNet50(include_top=False, weights=None, input_tensor=x, pooling="avg")
    return keras.Model(inputs, classifier_head(body.output, num_classes), name="resnet50")
