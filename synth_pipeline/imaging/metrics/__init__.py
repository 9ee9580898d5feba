"""Image metrics of generated MRI slices; every one returns a MetricResult (docs/mri_metrics.md).

    fid_r, kid_r = fid_kid(holdout, fake)                                   # fid.py
    ssim_r, psnr_r = position_matched_similarity(fake, positions, holdout, train)   # similarity.py
    cond_r = conditioning_mae(fake, positions, train, holdout)              # conditioning.py
    memo = memorisation_metrics(fake, train, holdout)                       # memorisation.py
"""

from synth_pipeline.imaging.metrics.conditioning import conditioning_mae, fit_position_regressor
from synth_pipeline.imaging.metrics.features import FeatureNet, extract, feature_net
from synth_pipeline.imaging.metrics.fid import fid, fid_kid, kid
from synth_pipeline.imaging.metrics.memorisation import memorisation_metrics
from synth_pipeline.imaging.metrics.similarity import position_matched_similarity

__all__ = ["FeatureNet", "conditioning_mae", "extract", "feature_net", "fid", "fid_kid", "fit_position_regressor",
           "kid", "memorisation_metrics", "position_matched_similarity"]
