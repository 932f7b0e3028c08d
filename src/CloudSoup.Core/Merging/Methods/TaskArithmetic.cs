// task_arithmetic: the generalized task-arithmetic pipeline (Ilharco et al. 2022; reference/merge-methods.md §1).
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
