"""Support for lessons 02-04: the maths and figures the notebooks show, and their checks.

The notebooks hold glue and exercises only; what they show lives here or in
:mod:`idivkit.losses` / :mod:`idivkit.backprop`. Importing this package is fast: sympy,
matplotlib and :mod:`idivkit.backprop` load inside the functions that use them.

* :mod:`.beta`            lesson 02: eq 29 in sympy, :func:`check_expression`, the slider's figure
* :mod:`.idiv`            lesson 03: E_I1 vs E_I2 figures, a rough reconstruction, gradient histograms
* :mod:`.backprop_checks` lesson 04: finite-difference checks with diagnostic messages
* :mod:`.steps`           lessons 00-04: reference steps for fair grading, shape checks, figure style
"""

from .backprop_checks import (
    SIGMOID_SIGN_HINT,
    activation,
    check_code_delta,
    check_gradient,
    check_gradients,
    check_gradients_sampled,
    check_loss_derivative,
    check_output_delta,
    finite_difference_delta3,
    make_network,
    sampled_finite_differences,
)
from .beta import (
    NAMED_BETAS,
    as_expression,
    beta_symbols,
    check_expression,
    check_step,
    check_vanishes_at_data,
    eq29,
    plot_beta_divergence,
    with_symbols,
)
from .idiv import (
    i_divergence_gradients,
    pca_reconstruction,
    plot_gradient_histograms,
    plot_gradient_maps,
    plot_i_divergence_asymmetry,
)
from .steps import call_step, check_shape, course_style, reference_steps, shortcuts

__all__ = [
    "NAMED_BETAS", "SIGMOID_SIGN_HINT", "activation", "beta_symbols", "check_code_delta",
    "check_expression", "check_gradient", "check_gradients", "check_gradients_sampled",
    "check_output_delta", "eq29", "finite_difference_delta3", "i_divergence_gradients",
    "make_network", "pca_reconstruction", "plot_beta_divergence", "plot_gradient_histograms",
    "plot_gradient_maps", "plot_i_divergence_asymmetry", "sampled_finite_differences",
    "with_symbols",
    "as_expression", "call_step", "check_step", "check_loss_derivative", "check_shape", "check_vanishes_at_data",
    "course_style", "reference_steps", "shortcuts",
]

# Lessons 07-09: SSIM, the thesis's tables, which beta.
from .ssim_steps import (  # noqa: E402
    check_ssim_terms,
    check_windowed_ssim,
    figure_style,
    plot_round_trip,
    plot_ssim_pairs,
    png_round_trip,
    reference_windowed_ssim,
    triangle_window_means,
    window_means,
)
from .tables import (  # noqa: E402
    TOLERANCE,
    beside_thesis,
    check_seed_summary,
    committed_runs,
    live_mnist,
    load_runs,
    markdown_table,
    plot_loss_histories,
    plot_reconstructions,
    plot_sweep,
    reconstruct,
    results_dir,
    scores_by_optimizer,
    seed_summary,
    selection_inflation,
    sweep_table,
    synthetic_records,
    thesis_table,
)
from .which_beta import (  # noqa: E402
    NOISE_MODELS,
    as_tweedie,
    best_beta,
    check_equivalent,
    indistinguishable,
    named_divergence,
    reference_nll,
    synthetic_sweep_rows,
    tweedie_symbols,
)

__all__ += [
    "check_ssim_terms", "check_windowed_ssim", "figure_style", "plot_round_trip", "plot_ssim_pairs",
    "png_round_trip", "reference_windowed_ssim", "triangle_window_means", "window_means",
    "TOLERANCE", "beside_thesis", "check_seed_summary", "committed_runs", "live_mnist", "load_runs", "markdown_table", "plot_loss_histories",
    "plot_reconstructions", "plot_sweep", "reconstruct", "results_dir", "scores_by_optimizer", "seed_summary",
    "selection_inflation", "sweep_table", "synthetic_records", "thesis_table",
    "NOISE_MODELS", "as_tweedie", "best_beta", "check_equivalent", "indistinguishable", "named_divergence",
    "reference_nll", "synthetic_sweep_rows", "tweedie_symbols",
]

# Lessons 05-06: training by hand (numpy), the thesis's experiment in Keras 3.
from .by_hand import (  # noqa: E402
    check_minibatches,
    check_optimizer,
    check_train,
    defaults_table,
    keras2_adagrad_step,
    keras2_hyper,
    nadam_momentum,
    plot_loss_curves,
    reference_minibatches,
    reference_step,
    reference_train,
)

__all__ += [
    "check_minibatches", "check_optimizer", "check_train", "defaults_table", "keras2_adagrad_step",
    "keras2_hyper", "nadam_momentum", "plot_loss_curves", "reference_minibatches", "reference_step",
    "reference_train",
]
from .experiment import (  # noqa: E402
    check_keras_independent,
    check_keras_loss,
    check_model,
    committed_row,
    committed_run,
    describe_model,
    plot_history_against_committed,
    plot_reconstructions as plot_reconstruction_rows,
    results_dir as committed_results_dir,
    train_epochs,
)

__all__ += [
    "check_keras_independent", "check_keras_loss", "check_model", "committed_row", "committed_run",
    "committed_results_dir", "describe_model", "plot_history_against_committed", "plot_reconstruction_rows",
    "train_epochs",
]
