// ties: the generalized task-arithmetic pipeline (Yadav et al. 2023, arXiv 2306.01708, mergekit per-tensor form; docs/methods.md. normalize=true is the paper's dis-mean, normalize=false its dis-sum).
namespace CloudSoup.Core.Merging.Methods;

public sealed class Ties(IMaskProvider? masks = null) : TaskArithmeticFamily(masks)
{
    public override string Name => "ties";
    public override string Description => "TIES: trim to the top-density magnitudes, elect signs, disjoint mean.";
    protected override SparsifyKind Sparsify => SparsifyKind.Magnitude;
    protected override bool SignConsensus => true;
    protected override bool DefaultNormalize => true;
    protected override bool DefaultRescale => false;
}
