"""``tf.contrib.layers`` of TensorFlow 1.x code on TensorFlow 2.15.

Each function takes the real ``tensorflow`` module first (bound by
:func:`.contrib.build`) and is written after TensorFlow 1.x's documented
behaviour and defaults, on ``tf.compat.v1.layers`` and its initializers:
``optimize_loss``, ``fully_connected``, ``conv2d``, ``dropout`` (a keep
probability), ``flatten``, ``batch_norm`` (TF 1's defaults: decay 0.999, no
scale, moving-average updates in ``UPDATE_OPS`` or, with
``updates_collections=None``, in place), ``xavier_initializer``,
``variance_scaling_initializer``, ``l1_regularizer`` and ``l2_regularizer``.
"""

from __future__ import annotations

OPTIMIZER_NAMES = {
    "Adagrad": "AdagradOptimizer",
    "Adam": "AdamOptimizer",
    "Ftrl": "FtrlOptimizer",
    "Momentum": "MomentumOptimizer",
    "RMSProp": "RMSPropOptimizer",
    "SGD": "GradientDescentOptimizer",
}
# TF 1's data_format strings of tf.contrib.layers -> tf.layers'.
DATA_FORMATS = {None: "channels_last", "NHWC": "channels_last", "NCHW": "channels_first",
                "NWC": "channels_last", "NCW": "channels_first"}


def _optimizer(tf, optimizer, learning_rate):
    v1 = tf.compat.v1
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZER_NAMES:
            raise ValueError(f"optimize_loss: unknown optimizer {optimizer!r}; use one of "
                             f"{', '.join(sorted(OPTIMIZER_NAMES))}, a tf.train.Optimizer class or instance.")
        if optimizer == "Momentum":
            raise ValueError("optimize_loss: 'Momentum' needs a momentum: pass "
                             "optimizer=lambda lr: tf.train.MomentumOptimizer(lr, momentum=0.9).")
        return getattr(v1.train, OPTIMIZER_NAMES[optimizer])(learning_rate=learning_rate)
    if isinstance(optimizer, v1.train.Optimizer):
        return optimizer
    if callable(optimizer):
        made = optimizer(learning_rate) if learning_rate is not None else optimizer()
        if isinstance(made, v1.train.Optimizer):
            return made
        raise ValueError(f"optimize_loss: optimizer made a {type(made).__name__}, not a tf.train.Optimizer.")
    raise ValueError(f"optimize_loss: optimizer {optimizer!r} is not a name, tf.train.Optimizer class or instance.")


def optimize_loss(tf, loss, global_step, learning_rate, optimizer, gradient_noise_scale=None,
                  gradient_multipliers=None, clip_gradients=None, learning_rate_decay_fn=None, update_ops=None,
                  variables=None, name=None, summaries=None, colocate_gradients_with_ops=False,
                  increment_global_step=True):
    """The train op of ``loss``: ``optimizer``'s gradients (optionally clipped
    by global norm, scaled per variable) applied after ``update_ops``; a
    tensor that evaluates to the loss once the update is done."""
    v1 = tf.compat.v1
    if gradient_noise_scale is not None:
        raise ValueError("optimize_loss(gradient_noise_scale=...) of tf.contrib.layers is not available on "
                         "TensorFlow 2.15 here: leave it out.")
    if global_step is None:
        global_step = v1.train.get_global_step()
    with v1.variable_scope(name, "OptimizeLoss", [loss, global_step]):
        if update_ops is None:
            update_ops = set(v1.get_collection(v1.GraphKeys.UPDATE_OPS))
        if update_ops:
            with tf.control_dependencies(list(update_ops)):
                loss = tf.identity(loss)
        lr = None
        if learning_rate is not None:
            lr = tf.convert_to_tensor(learning_rate, dtype=tf.float32) if isinstance(learning_rate, (int, float)) \
                else learning_rate
            if learning_rate_decay_fn is not None:
                lr = learning_rate_decay_fn(lr, global_step)
        opt = _optimizer(tf, optimizer, lr)
        if variables is None:
            variables = v1.trainable_variables()
        gradients = opt.compute_gradients(loss, variables,
                                          colocate_gradients_with_ops=colocate_gradients_with_ops)
        if gradient_multipliers:
            gradients = [(g * gradient_multipliers.get(v, gradient_multipliers.get(v.name, 1.0))
                          if g is not None else g, v) for g, v in gradients]
        if clip_gradients is not None:
            grads, variables_ = zip(*gradients)
            clipped, _ = tf.clip_by_global_norm(grads, clip_gradients)
            gradients = list(zip(clipped, variables_))
        for summary in ("loss", "learning_rate") if summaries is None else summaries:
            if summary == "loss":
                v1.summary.scalar("loss", loss)
            elif summary == "learning_rate" and lr is not None:
                v1.summary.scalar("learning_rate", lr)
        update = opt.apply_gradients(gradients, global_step=global_step if increment_global_step else None,
                                     name="train")
        with tf.control_dependencies([update]):
            return tf.identity(loss)


def fully_connected(tf, inputs, num_outputs, activation_fn="relu", normalizer_fn=None, normalizer_params=None,
                    weights_initializer=None, weights_regularizer=None, biases_initializer="zeros",
                    biases_regularizer=None, reuse=None, variables_collections=None, outputs_collections=None,
                    trainable=True, scope=None):
    """``tf.contrib.layers.fully_connected``: a dense layer, ReLU by default."""
    v1 = tf.compat.v1
    activation = _activation(tf, activation_fn)
    outputs = v1.layers.dense(
        inputs, num_outputs, activation=None if normalizer_fn else activation,
        **_weights_and_biases(v1, normalizer_fn, weights_initializer, weights_regularizer, biases_initializer,
                              biases_regularizer, trainable, scope, reuse))
    return _normalized(outputs, normalizer_fn, normalizer_params, activation)


def xavier_initializer(tf, uniform=True, seed=None, dtype=None):
    v1 = tf.compat.v1
    make = v1.glorot_uniform_initializer if uniform else v1.glorot_normal_initializer
    return make(seed=seed, dtype=dtype or tf.float32)


def l2_regularizer(tf, scale, scope=None):
    """``scale * sum(w ** 2) / 2`` of a weight tensor, as TF 1's contrib regularizer."""
    def regularizer(weights):
        with tf.name_scope(scope or "l2_regularizer"):
            return tf.multiply(tf.cast(scale, weights.dtype.base_dtype), tf.nn.l2_loss(weights))

    return regularizer


def _weights_and_biases(v1, normalizer_fn, weights_initializer, weights_regularizer, biases_initializer,
                        biases_regularizer, trainable, scope, reuse) -> dict:
    """The ``tf.compat.v1.layers`` arguments of a contrib layer's weights and biases, with TF 1's
    defaults: Glorot-uniform weights, zero biases, and no bias when a normalizer follows."""
    return dict(
        kernel_initializer=weights_initializer or v1.glorot_uniform_initializer(),
        kernel_regularizer=weights_regularizer,
        use_bias=biases_initializer is not None and normalizer_fn is None,
        bias_initializer=v1.zeros_initializer() if biases_initializer == "zeros" else biases_initializer,
        bias_regularizer=biases_regularizer, trainable=trainable, name=scope, reuse=reuse)


def _normalized(outputs, normalizer_fn, normalizer_params, activation):
    """A contrib layer's last step: its normalizer (in place of the bias), then its activation."""
    if normalizer_fn is None:
        return outputs
    outputs = normalizer_fn(outputs, **(normalizer_params or {}))
    return outputs if activation is None else activation(outputs)


def _activation(tf, activation_fn):
    return tf.nn.relu if activation_fn == "relu" else activation_fn


def _data_format(data_format):
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format {data_format!r}: use one of NHWC, NCHW.")
    return DATA_FORMATS[data_format]


def conv2d(tf, inputs, num_outputs, kernel_size, stride=1, padding="SAME", data_format=None, rate=1,
           activation_fn="relu", normalizer_fn=None, normalizer_params=None, weights_initializer=None,
           weights_regularizer=None, biases_initializer="zeros", biases_regularizer=None, reuse=None,
           variables_collections=None, outputs_collections=None, trainable=True, scope=None):
    """``tf.contrib.layers.conv2d``: a 2-D convolution, ReLU and Glorot-uniform weights by default."""
    v1 = tf.compat.v1
    activation = _activation(tf, activation_fn)
    outputs = v1.layers.conv2d(
        inputs, num_outputs, kernel_size, strides=stride, padding=padding.lower(),
        data_format=_data_format(data_format), dilation_rate=rate,
        activation=None if normalizer_fn else activation,
        **_weights_and_biases(v1, normalizer_fn, weights_initializer, weights_regularizer, biases_initializer,
                              biases_regularizer, trainable, scope, reuse))
    return _normalized(outputs, normalizer_fn, normalizer_params, activation)


def dropout(tf, inputs, keep_prob=0.5, noise_shape=None, is_training=True, outputs_collections=None,
            scope=None, seed=None):
    """``tf.contrib.layers.dropout``: keeps each unit with ``keep_prob`` while ``is_training``."""
    return tf.compat.v1.layers.dropout(inputs, rate=1 - keep_prob, noise_shape=noise_shape, seed=seed,
                                       training=is_training, name=scope)


def flatten(tf, inputs, outputs_collections=None, scope=None):
    """``tf.contrib.layers.flatten``: ``[batch, ...]`` -> ``[batch, k]``."""
    return tf.compat.v1.layers.flatten(inputs, name=scope)


def batch_norm(tf, inputs, decay=0.999, center=True, scale=False, epsilon=0.001, activation_fn=None,
               param_initializers=None, param_regularizers=None, updates_collections="update_ops",
               is_training=True, reuse=None, variables_collections=None, outputs_collections=None,
               trainable=True, batch_weights=None, fused=None, data_format="NHWC",
               zero_debias_moving_mean=False, scope=None, renorm=False, renorm_clipping=None,
               renorm_decay=0.99, adjustment=None):
    """``tf.contrib.layers.batch_norm`` on ``tf.compat.v1.layers.batch_normalization``.

    The moving averages' update ops go to ``updates_collections`` (TF 1's
    default: ``UPDATE_OPS``); ``None`` runs them before the output is
    returned, as TF 1 did."""
    v1 = tf.compat.v1
    if batch_weights is not None or zero_debias_moving_mean:
        raise ValueError("batch_norm(batch_weights=..., zero_debias_moving_mean=True) of tf.contrib.layers is "
                         "not available on TensorFlow 2.15 here: leave them out.")
    params = param_initializers or {}
    regularizers = param_regularizers or {}
    ops = v1.get_collection_ref(v1.GraphKeys.UPDATE_OPS)
    before = len(ops)
    outputs = v1.layers.batch_normalization(
        inputs, axis=1 if _data_format(data_format) == "channels_first" else -1, momentum=decay,
        epsilon=epsilon, center=center, scale=scale,
        beta_initializer=params.get("beta", v1.zeros_initializer()),
        gamma_initializer=params.get("gamma", v1.ones_initializer()),
        moving_mean_initializer=params.get("moving_mean", v1.zeros_initializer()),
        moving_variance_initializer=params.get("moving_variance", v1.ones_initializer()),
        beta_regularizer=regularizers.get("beta"), gamma_regularizer=regularizers.get("gamma"),
        training=is_training, trainable=trainable, name=scope, reuse=reuse, renorm=renorm,
        renorm_clipping=renorm_clipping, renorm_momentum=renorm_decay, fused=fused, adjustment=adjustment)
    updates = ops[before:]
    if updates_collections != "update_ops":
        del ops[before:]
        if updates_collections is None:
            with tf.control_dependencies(updates):
                outputs = tf.identity(outputs)
        else:
            for collection in ([updates_collections] if isinstance(updates_collections, str)
                               else updates_collections):
                for op in updates:
                    v1.add_to_collection(collection, op)
    activation = _activation(tf, activation_fn)
    return activation(outputs) if activation is not None else outputs


def variance_scaling_initializer(tf, factor=2.0, mode="FAN_IN", uniform=False, seed=None, dtype=None):
    """``tf.contrib.layers.variance_scaling_initializer`` (He initialization by default)."""
    if mode not in ("FAN_IN", "FAN_OUT", "FAN_AVG"):
        raise ValueError(f"variance_scaling_initializer: mode {mode!r}: use FAN_IN, FAN_OUT or FAN_AVG.")
    return tf.compat.v1.variance_scaling_initializer(
        scale=factor, mode=mode.lower(), distribution="uniform" if uniform else "truncated_normal", seed=seed,
        dtype=dtype or tf.float32)


def l1_regularizer(tf, scale, scope=None):
    """``scale * sum(|w|)`` of a weight tensor."""
    def regularizer(weights):
        with tf.name_scope(scope or "l1_regularizer"):
            return tf.multiply(tf.cast(scale, weights.dtype.base_dtype), tf.reduce_sum(tf.abs(weights)))

    return regularizer


FUNCTIONS = {fn.__name__: fn for fn in (
    optimize_loss, fully_connected, conv2d, dropout, flatten, batch_norm, xavier_initializer,
    variance_scaling_initializer, l1_regularizer, l2_regularizer)}
