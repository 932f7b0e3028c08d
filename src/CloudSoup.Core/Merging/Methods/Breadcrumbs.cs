// breadcrumbs: the generalized task-arithmetic pipeline (Davari & Belilovsky 2023, arXiv 2312.06795, per tensor as mergekit/sparsify.py; docs/methods.md).
namespace CloudSoup.Core.Merging.Methods;

public sealed class Breadcrumbs(IMaskProvider? masks = null) : TaskArithmeticFamily(masks)
{
    public override string Name => "breadcrumbs";
    public override string Description => "Model Breadcrumbs: drop the largest (gamma) and smallest entries of each task vector.";
    protected override SparsifyKind Sparsify => SparsifyKind.MagnitudeOutliers;
    protected override bool SignConsensus => false;
    protected override bool DefaultNormalize => false;
    protected override bool DefaultRescale => false;
}
