// della_linear: the generalized task-arithmetic pipeline (Deep et al. 2024 MagPrune, arXiv 2406.11617, then task arithmetic; mergekit/sparsify.py; docs/methods.md).
namespace CloudSoup.Core.Merging.Methods;

public sealed class DellaLinear(IMaskProvider? masks = null) : TaskArithmeticFamily(masks)
{
    public override string Name => "della_linear";
    public override string Description => "DELLA: magnitude-ranked random drop, then a weighted sum.";
    protected override SparsifyKind Sparsify => SparsifyKind.DellaMagprune;
    protected override bool SignConsensus => false;
    protected override bool DefaultNormalize => false;
    protected override bool DefaultRescale => true;
}
