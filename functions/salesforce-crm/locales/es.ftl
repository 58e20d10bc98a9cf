# Los mensajes del plugin salesforce-crm para quien llama (resultados y errores que el agente transmite).
duplicate-rules = Las reglas de duplicados de Salesforce rechazaron este lead ({ $said }). Busque a la persona con FindLeads antes de crear otro lead.
allowance-spent = Esta organización ha agotado por ahora su cupo de la API de Salesforce; vuelva a intentarlo más tarde
lead-sources = Salesforce solo acepta aquí sus orígenes de lead de la lista: { $said }
refused = Salesforce rechazó { $what ->
        [query] la búsqueda
        [create] el nuevo lead
       *[update] el cambio de estado
    }: { $said }
name-needed = indique el nombre de la persona: un apellido de como máximo 80 caracteres y nombres de como máximo 40
contact-needed = indique un correo electrónico o un número de teléfono (mejor ambos) para que alguien pueda hacer el seguimiento
already-on-file = Ya consta un lead con el mismo correo electrónico o número de teléfono: use el leadId { $id } en lugar de crear un lead nuevo.
search-needs = indique un correo electrónico, un número de teléfono o el principio de un nombre para buscar
not-a-status = '{ $status }' no es uno de los estados de lead de esta organización: { $statuses }
manager-only = Un responsable pone los leads en { $status } en Salesforce, no este asistente.
no-lead = No hay ningún lead con leadId { $id }. Búsquelo con FindLeads.
