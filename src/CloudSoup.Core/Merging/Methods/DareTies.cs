// dare_ties: the generalized task-arithmetic pipeline (Yu et al. 2023 drop-and-rescale, arXiv 2311.03099, then TIES sign consensus; docs/methods.md).
namespace CloudSoup.Core.Merging.Methods;

public sealed class DareTies(IMaskProvider? masks = null) : TaskArithmeticFamily(masks)
{
    public override string Name => "dare_ties";
    public override string Description => "DARE random drop and rescale, then TIES sign election.";
    protected override SparsifyKind Sparsify => SparsifyKind.Random;
    protected override bool SignConsensus => true;
    protected override bool DefaultNormalize => false;
    protected override bool DefaultRescale => true;
}
