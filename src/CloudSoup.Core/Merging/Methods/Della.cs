// della: the generalized task-arithmetic pipeline (Deep et al. 2024 MagPrune, arXiv 2406.11617, then TIES sign consensus; mergekit/sparsify.py; docs/methods.md).
namespace CloudSoup.Core.Merging.Methods;

public sealed class Della(IMaskProvider? masks = null) : TaskArithmeticFamily(masks)
{
    public override string Name => "della";
    public override string Description => "DELLA: magnitude-ranked random drop, then TIES sign election.";
    protected override SparsifyKind Sparsify => SparsifyKind.DellaMagprune;
    protected override bool SignConsensus => true;
    protected override bool DefaultNormalize => true;
    protected override bool DefaultRescale => true;
}
