// task_arithmetic: the generalized task-arithmetic pipeline (Ilharco et al. 2022, arXiv 2212.04089; docs/methods.md).
namespace CloudSoup.Core.Merging.Methods;

public sealed class TaskArithmetic(IMaskProvider? masks = null) : TaskArithmeticFamily(masks)
{
    public override string Name => "task_arithmetic";
    public override string Description => "Base plus the weighted sum of task vectors, scaled by lambda.";
    protected override SparsifyKind Sparsify => SparsifyKind.None;
    protected override bool SignConsensus => false;
    protected override bool DefaultNormalize => false;
    protected override bool DefaultRescale => false;
}
