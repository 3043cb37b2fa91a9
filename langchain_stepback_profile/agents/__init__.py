"""Step-back profiling for LangChain 1.x / LangGraph agents (the ``agents`` extra).

``StepBackProfileMiddleware`` personalizes a ``create_agent`` agent's system prompt,
``create_profile_tools`` gives it tools over the current user's memory, and ``UserContext``
says whose run it is. Profiles can live in any LangGraph store with
:class:`~langchain_stepback_profile.langgraph_store.LangGraphProfileStore`.

Example:
    ```python
    from langchain.agents import create_agent
    from langchain_stepback_profile.agents import StepBackProfileMiddleware, UserContext

    agent = create_agent(
        model, middleware=[StepBackProfileMiddleware(memory)], context_schema=UserContext
    )
    agent.invoke({"messages": [("user", "Suggest a title for ...")]}, context=UserContext("alice"))
    ```
"""

from langchain_stepback_profile.extras import require_extra

require_extra("agents", feature="langchain_stepback_profile.agents")

from langchain_stepback_profile.agents.context import UserContext, run_users  # noqa: E402
from langchain_stepback_profile.agents.middleware import StepBackProfileMiddleware  # noqa: E402
from langchain_stepback_profile.agents.tools import create_profile_tools  # noqa: E402

__all__ = ["StepBackProfileMiddleware", "UserContext", "create_profile_tools", "run_users"]
