// dare_linear: the generalized task-arithmetic pipeline (Yu et al. 2023 drop-and-rescale, arXiv 2311.03099, then task arithmetic; docs/methods.md).
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class DareLinear(IMaskProvider? masks = null) : TaskArithmeticFamily(TaskVectorMethods.DareLinear, masks);
