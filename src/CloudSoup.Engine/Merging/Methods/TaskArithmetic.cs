// task_arithmetic: the generalized task-arithmetic pipeline (Ilharco et al. 2022, arXiv 2212.04089; docs/methods.md).
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class TaskArithmetic(IMaskProvider? masks = null) : TaskArithmeticFamily(TaskVectorMethods.TaskArithmetic, masks);
