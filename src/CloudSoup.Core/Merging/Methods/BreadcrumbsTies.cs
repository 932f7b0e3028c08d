// breadcrumbs_ties: the generalized task-arithmetic pipeline (Breadcrumbs sparsification with TIES sign consensus; mergekit/sparsify.py; docs/methods.md).
namespace CloudSoup.Core.Merging.Methods;

public sealed class BreadcrumbsTies(IMaskProvider? masks = null) : TaskArithmeticFamily(masks)
{
    public override string Name => "breadcrumbs_ties";
    public override string Description => "Breadcrumbs sparsification followed by TIES sign election.";
    protected override SparsifyKind Sparsify => SparsifyKind.MagnitudeOutliers;
    protected override bool SignConsensus => true;
    protected override bool DefaultNormalize => false;
    protected override bool DefaultRescale => false;
}
