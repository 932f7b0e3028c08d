// dare_linear: the generalized task-arithmetic pipeline (Yu et al. 2023 drop-and-rescale, arXiv 2311.03099, then task arithmetic; docs/methods.md).
namespace CloudSoup.Core.Merging.Methods;

public sealed class DareLinear(IMaskProvider? masks = null) : TaskArithmeticFamily(masks)
{
    public override string Name => "dare_linear";
    public override string Description => "DARE random drop and rescale, then a weighted sum of task vectors.";
    protected override SparsifyKind Sparsify => SparsifyKind.Random;
    protected override bool SignConsensus => false;
    protected override bool DefaultNormalize => false;
    protected override bool DefaultRescale => true;
}
